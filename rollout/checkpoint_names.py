"""HF checkpoint names onto the embedded engine's transformers modules.

Weights on the wire and on disk use the checkpoint's names (what SGLang loads): one tensor per expert,
`...mlp.experts.{e}.{gate,up,down}_proj.weight`. transformers 5 holds a MoE layer's experts in two fused
3-D parameters instead, `experts.gate_up_proj` [E, 2I, H] (gate rows first, then up) and `experts.down_proj`
[E, H, I]; a per-expert tensor is one slice of them.
"""
from __future__ import annotations

import re

import torch

_EXPERT = re.compile(r"^(?P<prefix>.+\.experts)\.(?P<index>\d+)\.(?P<proj>gate_proj|up_proj|down_proj)\.weight$")


def target_of(name: str, params: dict[str, torch.nn.Parameter]) -> torch.Tensor | None:
    """The parameter (or the slice of a fused one) that checkpoint tensor `name` fills; None if none does."""
    if name in params:
        return params[name]
    match = _EXPERT.match(name)
    if match is None:
        return None
    prefix, index, proj = match["prefix"], int(match["index"]), match["proj"]
    if proj == "down_proj":
        fused = params.get(f"{prefix}.down_proj")
        return None if fused is None or index >= fused.shape[0] else fused[index]
    fused = params.get(f"{prefix}.gate_up_proj")
    if fused is None or index >= fused.shape[0]:
        return None
    half = fused.shape[1] // 2
    return fused[index, :half] if proj == "gate_proj" else fused[index, half:]
