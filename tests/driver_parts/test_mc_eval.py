"""mc-eval end to end: real embedded engine behind the router (Ray), real judge, real pass@k.

The tiny model is first overfitted (plain torch, a few seconds) to answer one problem with its
reference solution, so greedy decoding passes that problem and fails the other: pass@1 is exactly 1/2,
1 for its difficulty group and 0 for the other's."""
import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from judge.problem import Problem
from megatron_mc.data import tiny_tasks
from megatron_mc.eval.cli import main, resolve_model
from megatron_mc.run_state import hf_export_dir, mark_complete
from rollout.config import RolloutConfig
from rollout.prompts import PromptBuilder


def _overfit(hf_dir, problem: Problem, out_dir):
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    model = AutoModelForCausalLM.from_pretrained(hf_dir)
    rollout = RolloutConfig()
    prompt = PromptBuilder(tokenizer, rollout.system_prompt, rollout.instruction).prompt_ids(problem)
    answer = tokenizer.encode(tiny_tasks.reference_response(problem) + tokenizer.eos_token, add_special_tokens=False)
    ids = torch.tensor([prompt + answer])
    labels = ids.clone()
    labels[0, :len(prompt)] = -100
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one small sequence: more threads only contend with the other test processes
    try:
        for _ in range(60):
            loss = model(input_ids=ids, labels=labels).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    assert loss.item() < 0.05
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


@pytest.mark.slow
@pytest.mark.distributed
def test_mc_eval_counts_passes_through_engine_and_judge(tiny_default, tmp_path, capsys):
    problems = {p.id: p for p in tiny_tasks.make_problems("held_out")}
    solved, unsolved = problems["tiny/add_const/p6/v0"], problems["tiny/mod_const/p9/v0"]
    solved.metadata["difficulty"], unsolved.metadata["difficulty"] = "easy", "hard"
    run_dir = tmp_path / "run"
    export = hf_export_dir(run_dir, 5)
    _overfit(tiny_default.hf_dir, solved, export)
    mark_complete(export)
    assert resolve_model(str(run_dir)) == export
    problems_file = tmp_path / "problems.jsonl"
    problems_file.write_text("".join(json.dumps(p.to_dict()) + "\n" for p in (solved, unsolved)))

    out = tmp_path / "report.json"
    rc = main(["--model", str(run_dir), "--problems", str(problems_file), "--n", "2", "--k", "1,2",
               "--temperature", "0", "--max-new-tokens", "40", "--judge-workers", "2", "--out", str(out),
               "--log-dir", str(tmp_path / "logs")])
    assert rc == 0
    report = json.loads(out.read_text())
    assert report["overall"] == {"pass@1": 0.5, "pass@2": 0.5}
    assert report["by_difficulty"]["easy"]["pass@1"] == 1.0 and report["by_difficulty"]["hard"]["pass@1"] == 0.0
    assert report["verdicts"]["AC"] == 2 and sum(report["verdicts"].values()) == 4
    assert "difficulty=hard" in capsys.readouterr().out


def test_mc_eval_argument_errors(tmp_path, capsys):
    assert main(["--model", str(tmp_path), "--problems", "x.jsonl", "--n", "2", "--k", "1,4"]) == 2
    assert "smaller than the largest k" in capsys.readouterr().err
    assert main(["--model", str(tmp_path), "--problems", "x.jsonl"]) == 2
    assert "neither an HF checkpoint" in capsys.readouterr().err
