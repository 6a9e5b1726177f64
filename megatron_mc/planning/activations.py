"""Activation memory of the train ranks under each recompute choice, module by module.

What one layer keeps for its backward pass, in elements per token of a micro batch on one GPU (Qwen-style
layers: RMSNorm, no dropout, GQA with flash attention or SDPA, so no s^2 term; SwiGLU MLP or top-k MoE),
for Transformer Engine's fused layers and for Megatron-Core's local layers on plain torch ops (which keep
more: a torch RMSNorm keeps its input and x*rstd, RoPE its cos/sin, SwiGLU its gate, up and silu apart):

  module         fused (TE)                               local                           divided by
  norms          2 norm inputs: 2h                        inputs and x*rstd: 4h           tp_sp
  linear inputs  the norm outputs QKV and fc1 keep: 2h    same                            tp_sp
  qk norm        q and k before their norms: q + kv       q, q*rstd, the QKV output,      tp
                                                          k*rstd: 3q + 3kv
  rope           -                                        cos and sin: 4 head_dim         1
  core_attn      q, k, v, output: 2q + 2kv                rotated q and k, output: 2q+kv  tp
  mlp            fc1 output and activation: 3F            fc1 output, gate, up, silu,     tp
                                                          activation: 5F
  moe            k copies of the tokens, fc1 output and   same with 6F a copy,            (tokens) tp/etp,
                 activation: k h + 3 k F_moe              plus the router's E             (F) tp

(tp_sp = tp with sequence parallel, else 1; q = heads x head_dim, kv = kv heads x head_dim; the local
column was read off what autograd saves in Megatron-Core 0.16's local layers, see the tests.)
Selective recompute drops what it recomputes: layernorm the linear inputs, mlp / moe the whole block but
its input, moe_act the activation output; core_attn keeps q, k, v (the checkpoint's inputs) and the
output (the projection's input), so with flash attention it frees nothing. Full recompute keeps each
unit's input (h / tp_sp a token), plus one unit's whole working set while it is recomputed.

A pipeline's first stage holds min(pp, m) micro batches in flight under 1F1B (m micro batches), times
1 + (pp-1)/(pp vpp) with the interleaved schedule (Megatron-LM's estimate of its extra warm-up).
"""
from __future__ import annotations

from dataclasses import dataclass

from megatron_mc.planning.model_shape import ModelShape


@dataclass(frozen=True)
class Recompute:
    kind: str = "none"  # none | selective | full
    modules: tuple[str, ...] = ()  # selective
    method: str = "uniform"  # full: uniform | block
    num_layers: int = 1  # full

    def label(self) -> str:
        if self.kind == "selective":
            return "selective " + "+".join(self.modules)
        if self.kind == "full":
            return f"full {self.method} {self.num_layers}"
        return "none"

    def config_keys(self) -> dict:
        """The model.* keys that select this choice."""
        if self.kind == "selective":
            return {"model.recompute": "selective", "model.recompute_modules": list(self.modules)}
        if self.kind == "full":
            return {"model.recompute": "full", "model.recompute_method": self.method,
                    "model.recompute_num_layers": self.num_layers}
        return {"model.recompute": "none"}


def layer_bytes_per_token(shape: ModelShape, tp: int, etp: int, sequence_parallel: bool, dtype_bytes: int,
                          recomputed: tuple[str, ...] = (), fused: bool = True) -> dict[str, float]:
    """What one layer keeps per token on one GPU, by the module that keeps it (`fused`: TE's layers)."""
    h, hd = shape.hidden_size, shape.head_dim
    q, kv = shape.num_heads * hd, shape.num_kv_heads * hd
    tp_sp = tp if sequence_parallel else 1
    terms = {
        "norms": (2 if fused else 4) * h / tp_sp,
        "linear_inputs": 0.0 if "layernorm" in recomputed else 2 * h / tp_sp,
        "qk_norm": ((q + kv) if fused else (3 * q + 3 * kv)) / tp if shape.qk_norm else 0.0,
        "rope": 0.0 if fused else 4 * hd,
        "core_attn": ((2 * q + 2 * kv) if fused else (2 * q + kv)) / tp,
    }
    if shape.num_experts:
        k, f = shape.experts_per_token, shape.moe_ffn_hidden_size
        moe = k * etp / tp * h + (3 if fused else 6) * k * f / tp + (0 if fused else shape.num_experts)
        if "moe_act" in recomputed:
            moe -= k * f / tp
        terms["moe"] = 0.0 if "moe" in recomputed else moe
    else:
        terms["mlp"] = 0.0 if "mlp" in recomputed else (3 if fused else 5) * shape.ffn_hidden_size / tp
    return {name: value * dtype_bytes for name, value in terms.items()}


def in_flight_micro_batches(pp: int, vpp: int, micro_batches: int) -> float:
    held = min(pp, micro_batches)
    return held * (1 + (pp - 1) / (pp * vpp)) if vpp > 1 else held


def activation_bytes(shape: ModelShape, recompute: Recompute, *, tp: int, etp: int, pp: int, vpp: int,
                     sequence_parallel: bool, dtype_bytes: int, tokens: float, micro_batches: int,
                     fused: bool = True) -> float:
    """Activations on the first pipeline stage (the most loaded) for `tokens` tokens per micro batch on
    one GPU (micro_batch_tokens / cp)."""
    modules = recompute.modules if recompute.kind == "selective" else ()
    per_token = layer_bytes_per_token(shape, tp, etp, sequence_parallel, dtype_bytes, modules, fused)
    layer = sum(per_token.values()) * tokens
    stage_layers = shape.num_layers / pp
    layer_input = shape.hidden_size / (tp if sequence_parallel else 1) * dtype_bytes * tokens
    in_flight = in_flight_micro_batches(pp, vpp, micro_batches)
    if recompute.kind != "full":
        return layer * stage_layers * in_flight
    if recompute.method == "uniform":
        per_micro_batch = stage_layers / recompute.num_layers * layer_input
        working = recompute.num_layers * layer
    else:
        chunk_layers = stage_layers / vpp
        per_micro_batch = vpp * (recompute.num_layers * layer_input + (chunk_layers - recompute.num_layers) * layer)
        working = layer
    return per_micro_batch * in_flight + working
