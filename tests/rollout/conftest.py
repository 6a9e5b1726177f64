"""Tiny Qwen3-style checkpoints (random weights) with a character-level tokenizer and a chat template.

Nothing is downloaded: the tokenizer is a WordLevel vocabulary of printable ASCII plus Qwen's special
tokens, wrapped in PreTrainedTokenizerFast; the model is Qwen3ForCausalLM from a tiny Qwen3Config.
"""
from __future__ import annotations

import contextlib
import string
from pathlib import Path

import pytest

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tokenizer():
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = sorted(set(string.printable) - set("\x0b\x0c"))
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + chars)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<|endoftext|>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS, chat_template=CHAT_TEMPLATE,
    )


def build_tiny_model(out_dir: Path, seed: int) -> Path:
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tokenizer = build_tokenizer()
    config = Qwen3Config(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=512,
        tie_word_embeddings=True, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(config)
    with torch.no_grad():  # a wider logit spread than the default init, so greedy outputs depend on the weights
        for p in model.parameters():
            p.normal_(0.0, 0.5) if p.dim() > 1 else p.normal_(1.0, 0.1)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny_qwen3_a"), seed=1)


@pytest.fixture(scope="session")
def other_tiny_model_dir(tmp_path_factory) -> Path:
    """Same architecture, different weights: the 'new policy' in weight-update tests."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny_qwen3_b"), seed=2)


def hf_model(model_dir: Path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_dir, dtype="float32").eval()


def problems(count: int, prefix: str = "p"):
    """Problems with statements of different lengths (the judge is not involved in engine tests)."""
    from judge.problem import Problem, TestCase

    return [Problem(id=f"{prefix}{i}", kind="stdio", tests=[TestCase("1\n", "1\n")],
                    metadata={"question_title": f"Echo {i}", "question_content": "Print the input. " * (1 + i % 3)})
            for i in range(count)]


@pytest.fixture(scope="module")
def embedded_server(tmp_path_factory):
    """Start embedded servers as child processes: `start(model_dir) -> url`; stopped after the module."""
    from rollout.config import RolloutConfig
    from rollout.launch_args import server_command
    from rollout.process import free_port, start_process, stop_process, wait_healthy

    started = []
    log_dir = tmp_path_factory.mktemp("server_logs")

    def start(model_dir: Path, max_batch: int = 8) -> str:
        port = free_port()
        cfg = RolloutConfig(engine="embedded", dtype="float32", embedded_max_batch=max_batch)
        log_path = log_dir / f"engine_{port}.log"
        process = start_process(server_command(cfg, str(model_dir), "127.0.0.1", port), log_path)
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, process, timeout_s=120, log_path=log_path)
        return url

    yield start
    for process in started:
        stop_process(process)


def hf_logprobs(model, prompt_ids: list[int], response_ids: list[int], temperature: float) -> list[float]:
    """Log-probs of the response tokens recomputed in one forward pass, at the sampling temperature."""
    import torch

    ids = torch.tensor([prompt_ids + response_ids])
    with torch.no_grad():
        logits = model(ids).logits[0, len(prompt_ids) - 1:-1].float()
    scaled = torch.log_softmax(logits / temperature if temperature > 0 else logits, dim=-1)
    return scaled.gather(-1, torch.tensor(response_ids)[:, None])[:, 0].tolist()


@contextlib.asynccontextmanager
async def in_process_server(engine):
    """The real embedded server over `engine`, in this event loop on a free loopback port: yields its URL."""
    from aiohttp import web

    from rollout.embedded_server import EmbeddedServer
    from rollout.process import free_port

    runner = web.AppRunner(EmbeddedServer(engine).app())
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
