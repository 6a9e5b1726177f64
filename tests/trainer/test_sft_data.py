"""mc-sft's data: prompt/response and chat rows become the rollout's prompt ids plus the response ending in
EOS; bad rows are refused naming the file and row; the CLI reports them without starting anything."""
from __future__ import annotations

import json

import pytest
from transformers import AutoTokenizer

from megatron_mc.data.tiny_default import prepare_tiny_default
from megatron_mc.sft.cli import main
from megatron_mc.sft.data import DataError, load_examples
from rollout.prompts import PromptBuilder


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(prepare_tiny_default().hf_dir)


def _write(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_rows_become_rollout_prompts_and_eos_terminated_responses(tmp_path, tokenizer):
    from judge.problem import Problem, TestCase

    path = _write(tmp_path / "d.jsonl", [
        {"prompt": "Add two numbers.", "response": "print(1)"},
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Add."},
                      {"role": "assistant", "content": "print(2)"}]},
    ])
    (p1, r1), (p2, r2) = load_examples(path, tokenizer)
    problem = Problem(id="x", kind="stdio", tests=[TestCase("", "")], metadata={"question_content": "Add two numbers."})
    assert p1 == PromptBuilder(tokenizer).prompt_ids(problem)
    assert r1 == tokenizer("print(1)", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    assert tokenizer.decode(p2).count("Be brief.") == 1 and r2[-1] == tokenizer.eos_token_id


@pytest.mark.parametrize("row, message", [
    ("{not json", "row 2: not valid JSON"),
    ({"prompt": "x"}, "row 2: a row needs string 'prompt' and 'response'"),
    ({"messages": [{"role": "user", "content": "x"}]}, "row 2: the last message must be the assistant's"),
    ({"prompt": "x", "response": ""}, "row 2: the response is empty"),
])
def test_bad_rows_name_file_and_row(tmp_path, tokenizer, row, message):
    path = _write(tmp_path / "bad.jsonl", [{"prompt": "a", "response": "b"}, row])
    with pytest.raises(DataError, match=f"bad.jsonl, {message}"):
        load_examples(path, tokenizer)


def test_cli_reports_bad_data_and_missing_model(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(f"model:\n  hf_dir: {prepare_tiny_default().hf_dir}\n")
    data = _write(tmp_path / "d.jsonl", [{"prompt": "a"}])
    assert main(["--config", str(config), "--data", str(data)]) == 2
    assert "d.jsonl, row 1" in capsys.readouterr().err
    assert main(["--config", str(config), "--data", str(data), "--set", "model.hf_dir="]) == 2
    assert "model.hf_dir is empty" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.distributed
def test_cli_fine_tunes_and_exports_a_loadable_checkpoint(tmp_path, capsys):
    from transformers import AutoModelForCausalLM

    from megatron_mc.checkpoint.safetensors_dir import SafetensorsDir

    start = prepare_tiny_default().hf_dir
    config = tmp_path / "c.yaml"
    config.write_text(f"model: {{hf_dir: {start}, dtype: float32, transformer_impl: local, "
                      "make_vocab_size_divisible_by: 64}\ncluster: {gpus_per_node: 1}\n"
                      "train: {train_batch_size: 4, mini_batch_size: 4, n_samples_per_prompt: 1, lr: 1.0e-3}\n")
    data = _write(tmp_path / "d.jsonl", [{"prompt": f"Print {i}.", "response": f"print({i})"} for i in range(6)])
    out = tmp_path / "sft"
    assert main(["--config", str(config), "--data", str(data), "--steps", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert [line.split()[1] for line in printed.splitlines() if line.startswith("step ")] == ["1/3", "2/3", "3/3"]
    model = AutoModelForCausalLM.from_pretrained(out)  # config, weights and index all in place
    assert model.config.vocab_size == AutoModelForCausalLM.from_pretrained(start).config.vocab_size
    assert (out / "tokenizer.json").is_file()
    before, after = SafetensorsDir(str(start)), SafetensorsDir(str(out))
    assert max((after.get(n) - before.get(n)).abs().max().item() for n in after.names()) > 1e-4
