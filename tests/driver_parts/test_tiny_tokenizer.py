"""The tiny sentencepiece tokenizer as an HF tokenizer: exact round trips of code, chat template, cache."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoModelForCausalLM, AutoTokenizer

from megatron_mc.data import tiny_tasks
from megatron_mc.data.tiny_default import TinyModelShape, prepare_tiny_default


@pytest.fixture(scope="module")
def tiny(tiny_default):
    return tiny_default


@pytest.fixture(scope="module")
def tokenizer(tiny):
    return AutoTokenizer.from_pretrained(tiny.hf_dir)


def test_reference_answers_round_trip_exactly(tokenizer):
    for problem in tiny_tasks.make_problems("train") + tiny_tasks.make_problems("held_out"):
        for text in (problem.metadata["question_content"], tiny_tasks.reference_response(problem)):
            ids = tokenizer.encode(text, add_special_tokens=False)
            assert tokenizer.decode(ids) == text
            assert tokenizer.unk_token_id not in ids


CODE_ALPHABET = st.sampled_from(list("    \t\n\n\r abcxyz_019()[]{}:=+-*/%<>'\"#.,é€漢🙂"))


@settings(max_examples=200, deadline=None)
@given(st.text(CODE_ALPHABET, max_size=80))
def test_any_text_round_trips(tokenizer, text):
    assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text


def test_indentation_blank_lines_and_trailing_spaces(tokenizer):
    code = "def f(x):\n\n    if x:  \n\t\treturn  1\n    return 0\n\n\n"
    ids = tokenizer.encode(code, add_special_tokens=False)
    assert tokenizer.decode(ids) == code
    assert tokenizer.decode(ids, skip_special_tokens=True) == code


def test_qwen_style_chat_template(tokenizer):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Sum?\n  two lines"}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nSum?\n  two lines<|im_end|>\n"
                    "<|im_start|>assistant\n")
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert ids.count(tokenizer.convert_tokens_to_ids("<|im_start|>")) == 3
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    assert tokenizer.decode(ids) == text


def test_tiny_qwen3_checkpoint_loads_and_is_cached(tiny, tokenizer):
    model = AutoModelForCausalLM.from_pretrained(tiny.hf_dir)
    assert model.config.model_type == "qwen3"
    assert model.config.vocab_size == len(tokenizer)
    assert model.config.eos_token_id == tokenizer.eos_token_id
    stamp = (tiny.hf_dir / "model.safetensors").stat().st_mtime_ns
    again = prepare_tiny_default(tiny.root.parent)
    assert again == tiny and (tiny.hf_dir / "model.safetensors").stat().st_mtime_ns == stamp
    other = prepare_tiny_default(tiny.root.parent, shape=TinyModelShape(num_hidden_layers=1))
    assert other.root != tiny.root
    assert AutoModelForCausalLM.from_pretrained(other.hf_dir).config.num_hidden_layers == 1
    assert not [p for p in tiny.root.parent.iterdir() if p.name.startswith(".building-")]


def test_hf_encoding_matches_sentencepiece_and_learns_code_pieces(tiny, tokenizer):
    import sentencepiece as spm

    from megatron_mc.data.tiny_tokenizer import SPM_FILE

    sp = spm.SentencePieceProcessor(model_file=str(tiny.root / "tokenizer" / SPM_FILE))
    for text in tiny_tasks.tokenizer_corpus():
        assert tokenizer.encode(text, add_special_tokens=False) == sp.encode(text)
    assert 1000 <= len(tokenizer) <= 1100
    tokens = tokenizer.tokenize("```python\nif n:\n    print(n)\n```")
    assert "python" in tokens and "\n" in tokens and any(t.startswith("\u2581\u2581\u2581\u2581") for t in tokens)
