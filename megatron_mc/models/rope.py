"""Rotary position settings read from an HF config, applied to a Megatron-Core GPTModel so that positions
beyond the original window match HF exactly (YaRN, llama3, linear; 'default' is plain RoPE).

HF writes these either as `rope_theta` + `rope_scaling` (transformers 4 checkpoints) or as one
`rope_parameters` dict (transformers 5). Megatron-Core's llama3 scaling hard-codes Llama 3.1's constants,
so for llama3 and linear the inverse frequencies are recomputed from the HF values after the model is
built; YaRN goes through Megatron-Core's own YaRN embedding and attention concentration factor.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

import torch

SUPPORTED = ("default", "linear", "llama3", "yarn")


@dataclass(frozen=True)
class Rope:
    theta: float
    kind: str = "default"
    params: dict[str, Any] = field(default_factory=dict)


def read_rope(hf: dict, override: Optional[dict]) -> Rope:
    """The rope settings of an HF config dict, with `override` (HF rope_scaling schema) replacing scaling."""
    params = dict(hf.get("rope_parameters") or {})
    theta = params.pop("rope_theta", hf.get("rope_theta", 10000.0))
    scaling = override if override is not None else (hf.get("rope_scaling") or params)
    scaling = {k: v for k, v in scaling.items() if k != "rope_theta"}
    kind = scaling.pop("rope_type", scaling.pop("type", "default"))
    if kind not in SUPPORTED:
        raise ValueError(
            f"config.json rope type {kind!r} is not supported; supported: {', '.join(SUPPORTED)}"
        )
    if kind == "yarn":
        scaling.setdefault("original_max_position_embeddings", hf.get("max_position_embeddings"))
        if scaling.get("attention_factor") is not None:
            expected = _yarn_concentration(scaling)
            if not math.isclose(scaling["attention_factor"], expected, rel_tol=1e-6):
                raise ValueError(
                    f"config.json rope yarn attention_factor={scaling['attention_factor']} differs from the "
                    f"value implied by factor/mscale ({expected}); Megatron-Core cannot express it"
                )
    return Rope(theta=float(theta), kind=kind, params=scaling)


def _yarn_mscale(factor: float, mscale: float) -> float:
    return 1.0 if factor <= 1 else 0.1 * mscale * math.log(factor) + 1.0


def _yarn_concentration(p: dict) -> float:
    factor = p["factor"]
    if p.get("mscale") and p.get("mscale_all_dim"):
        return _yarn_mscale(factor, p["mscale"]) / _yarn_mscale(factor, p["mscale_all_dim"])
    return _yarn_mscale(factor, 1.0)


def gpt_model_kwargs(rope: Rope) -> dict:
    kind = "yarn" if rope.kind == "yarn" else "rope"
    return {"position_embedding_type": kind, "rotary_base": rope.theta, "rotary_percent": 1.0}


def set_config_fields(config, rope: Rope) -> None:
    """YaRN settings live as plain attributes Megatron-Core reads from the TransformerConfig.

    YaRN's attention factor m multiplies the rotated queries and keys; their product carries m^2, so it
    is folded into the softmax scale instead (m^2 / sqrt(head_dim)) and Megatron-Core's own factor is
    made 1 (equal mscale and mscale_all_dim). Exact, and it lets TE's fused RoPE serve YaRN: the fused
    kernel for packed sequences ignores the factor, and the unfused one reads the sequence boundaries
    back from the GPU in every layer."""
    if rope.kind != "yarn":
        return
    p = rope.params
    config.yarn_rotary_scaling_factor = float(p["factor"])
    config.yarn_original_max_position_embeddings = int(p["original_max_position_embeddings"])
    config.yarn_beta_fast = float(p.get("beta_fast") or 32.0)
    config.yarn_beta_slow = float(p.get("beta_slow") or 1.0)
    config.yarn_mscale = config.yarn_mscale_all_dim = 1.0
    config.yarn_correction_range_round_to_int = bool(p.get("truncate", True))
    factor = _yarn_concentration(p)
    config.softmax_scale = factor * factor / math.sqrt(config.kv_channels)


def apply_to_model(model, rope: Rope, head_dim: int) -> None:
    """Recompute inverse frequencies the HF way for scalings Megatron-Core's RoPE cannot parameterize."""
    if rope.kind not in ("llama3", "linear"):
        return
    rotary = model.rotary_pos_emb
    exponents = torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim
    inv_freq = 1.0 / (rope.theta**exponents)
    rotary.inv_freq = _scaled_inv_freq(inv_freq, rope).to(rotary.inv_freq.device)


def _scaled_inv_freq(inv_freq: torch.Tensor, rope: Rope) -> torch.Tensor:
    p = rope.params
    factor = float(p["factor"])
    if rope.kind == "linear":
        return inv_freq / factor
    low, high = float(p["low_freq_factor"]), float(p["high_freq_factor"])
    old_context = float(p["original_max_position_embeddings"])
    wavelen = 2 * math.pi / inv_freq
    scaled = torch.where(wavelen > old_context / low, inv_freq / factor, inv_freq)
    smooth = (old_context / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = (wavelen >= old_context / high) & (wavelen <= old_context / low)
    return torch.where(medium, smoothed, scaled)
