"""The embedded default's files: task JSONL, tokenizer and a tiny random-init Qwen3 HF checkpoint, cached.

`prepare_tiny_default()` builds everything once into CACHE/<hash>/, the hash covering the task
problems (of the chosen task family, FAMILIES), the tokenizer settings and the model's shape, so a change
to any of them builds afresh and an unchanged set is reused. The build goes to a temporary folder renamed into place when complete, so a
killed build never leaves a half-made cache entry. The supervised warm start on the reference solutions
is a separate step (mc-sft) starting from `hf_dir`.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType

import torch
from transformers import PreTrainedTokenizerBase, Qwen3Config, Qwen3ForCausalLM

from megatron_mc.data import tiny_long_tasks, tiny_tasks
from megatron_mc.data.tiny_tokenizer import build_tiny_tokenizer

CACHE_ENV = "MEGATRON_MC_CACHE"
# data.tiny_family -> the module that makes its problems (make_problems, write_problems, tokenizer_corpus,
# sft_responses). The family's problems are in the cache key, so each family gets its own tokenizer and model.
FAMILIES: dict[str, ModuleType] = {"default": tiny_tasks, "long": tiny_long_tasks}


def default_cache_root() -> Path:
    """$MEGATRON_MC_CACHE/tiny_default (default ~/.cache/megatron-mc/tiny_default)."""
    return Path(os.environ.get(CACHE_ENV, "~/.cache/megatron-mc")).expanduser() / "tiny_default"


@dataclass(frozen=True)
class TinyModelShape:
    hidden_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    head_dim: int = 32
    intermediate_size: int = 384
    max_position_embeddings: int = 1024
    tie_word_embeddings: bool = True
    seed: int = 0


@dataclass(frozen=True)
class TinyDefault:
    root: Path
    hf_dir: Path  # tokenizer + random-init Qwen3 weights
    train_problems: Path
    held_out_problems: Path


def build_tiny_qwen3(out_dir: str | Path, tokenizer: PreTrainedTokenizerBase, shape: TinyModelShape = TinyModelShape()
                     ) -> Path:
    """Write a randomly initialised Qwen3 causal LM sized for `tokenizer` (and the tokenizer) to `out_dir`."""
    config = Qwen3Config(
        vocab_size=len(tokenizer), hidden_size=shape.hidden_size, num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=shape.num_attention_heads, num_key_value_heads=shape.num_key_value_heads,
        head_dim=shape.head_dim, intermediate_size=shape.intermediate_size,
        max_position_embeddings=shape.max_position_embeddings, tie_word_embeddings=shape.tie_word_embeddings,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, dtype="float32")
    torch.manual_seed(shape.seed)
    model = Qwen3ForCausalLM(config)
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def family_tasks(family: str) -> ModuleType:
    if family not in FAMILIES:
        raise ValueError(f"unknown tiny task family {family!r} (data.tiny_family); known: {', '.join(FAMILIES)}")
    return FAMILIES[family]


def _cache_key(vocab_size: int, shape: TinyModelShape, tasks: ModuleType) -> str:
    digest = hashlib.sha256()
    for split in ("train", "held_out"):
        for problem in tasks.make_problems(split):
            digest.update(json.dumps(problem.to_dict(), sort_keys=True).encode())
    digest.update(json.dumps({"vocab_size": vocab_size, "shape": asdict(shape)}, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def prepare_tiny_default(cache_root: str | Path | None = None, vocab_size: int = 1024,
                         shape: TinyModelShape = TinyModelShape(), family: str = "default") -> TinyDefault:
    tasks = family_tasks(family)
    cache_root = Path(cache_root).expanduser() if cache_root else default_cache_root()
    root = cache_root / _cache_key(vocab_size, shape, tasks)
    paths = TinyDefault(root, root / "hf", root / "train.jsonl", root / "held_out.jsonl")
    if root.is_dir():
        return paths
    cache_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=cache_root, prefix=".building-"))
    try:
        tasks.write_problems(staging / paths.train_problems.name, "train")
        tasks.write_problems(staging / paths.held_out_problems.name, "held_out")
        tokenizer = build_tiny_tokenizer(staging / "tokenizer", tasks.tokenizer_corpus(), vocab_size)
        build_tiny_qwen3(staging / paths.hf_dir.name, tokenizer, shape)
        try:
            staging.rename(root)
        except OSError:  # another process finished the same build first; its result is identical
            if not root.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return paths
