"""The few numbers of a model that size its memory, read from an HF config.json.

A dry run often happens where the checkpoint is not (a laptop planning a cluster job), so a few public
Qwen3 shapes are known by name: an `hf_dir` whose config.json is absent but whose last path part names
one of them (e.g. /models/Qwen3-32B) is planned with that shape.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ModelShape:
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    ffn_hidden_size: int  # dense MLP width (SwiGLU: three matrices)
    vocab_size: int
    tie_word_embeddings: bool
    num_experts: int = 0
    moe_ffn_hidden_size: int = 0
    qk_norm: bool = True
    experts_per_token: int = 0  # top-k routing (MoE only)

    @classmethod
    def from_hf_config(cls, cfg: dict[str, Any]) -> ModelShape:
        heads = cfg["num_attention_heads"]
        experts = cfg.get("num_experts") or cfg.get("num_local_experts") or 0  # newer transformers: the latter
        return cls(
            hidden_size=cfg["hidden_size"], num_layers=cfg["num_hidden_layers"], num_heads=heads,
            num_kv_heads=cfg.get("num_key_value_heads") or heads,
            head_dim=cfg.get("head_dim") or cfg["hidden_size"] // heads,
            ffn_hidden_size=cfg["intermediate_size"], vocab_size=cfg["vocab_size"],
            tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)),
            num_experts=experts, moe_ffn_hidden_size=cfg.get("moe_intermediate_size") or 0,
            qk_norm=cfg.get("model_type", "").startswith("qwen3"),
            experts_per_token=(cfg.get("num_experts_per_tok") or 0) if experts else 0)


_QWEN3 = {"vocab_size": 151936, "head_dim": 128, "model_type": "qwen3"}
KNOWN_HF_CONFIGS: dict[str, dict[str, Any]] = {
    "Qwen3-4B": {**_QWEN3, "hidden_size": 2560, "num_hidden_layers": 36, "num_attention_heads": 32,
                 "num_key_value_heads": 8, "intermediate_size": 9728, "tie_word_embeddings": True},
    "Qwen3-8B": {**_QWEN3, "hidden_size": 4096, "num_hidden_layers": 36, "num_attention_heads": 32,
                 "num_key_value_heads": 8, "intermediate_size": 12288, "tie_word_embeddings": False},
    "Qwen3-32B": {**_QWEN3, "hidden_size": 5120, "num_hidden_layers": 64, "num_attention_heads": 64,
                  "num_key_value_heads": 8, "intermediate_size": 25600, "tie_word_embeddings": False},
    "Qwen3-30B-A3B": {**_QWEN3, "model_type": "qwen3_moe", "hidden_size": 2048, "num_hidden_layers": 48,
                      "num_attention_heads": 32, "num_key_value_heads": 4, "intermediate_size": 6144,
                      "num_experts": 128, "num_experts_per_tok": 8, "moe_intermediate_size": 768,
                      "tie_word_embeddings": False},
}


def load_model_shape(hf_dir: str | Path) -> ModelShape:
    path = Path(hf_dir).expanduser() / "config.json"
    if path.is_file():
        return ModelShape.from_hf_config(json.loads(path.read_text()))
    name = Path(hf_dir).name
    if name in KNOWN_HF_CONFIGS:
        return ModelShape.from_hf_config(KNOWN_HF_CONFIGS[name])
    raise FileNotFoundError(f"model.hf_dir: {path} does not exist and {name!r} is not a known shape "
                            f"({', '.join(KNOWN_HF_CONFIGS)}); point model.hf_dir at an HF checkpoint")
