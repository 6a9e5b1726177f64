"""Which of Megatron-Core's fused kernels the policy uses: each is on where its kernel exists here and off
otherwise, with one log line per run naming what is off and why.

- bias_activation_fusion (bias-SwiGLU) and bias_dropout_fusion (bias-dropout-add): Megatron's own kernels,
  torch.compile'd; Triton generates them on CUDA devices (not with torch.compile's CPU backend).
- apply_rope_fusion: Transformer Engine's fused RoPE (YaRN too: its attention factor lives in the softmax
  scale, see rope.set_config_fields, since the fused kernel for packed sequences takes none).
- gradient_accumulation_fusion: apex's fused_weight_gradient_mlp_cuda extension. GPTModel's output layer
  is Megatron's own ColumnParallelLinear even with TE layers, and it refuses the flag without apex.
- masked_softmax_fusion: Megatron's fused softmax serves only its old DotProductAttention (and needs apex's
  kernels); SDPA and TE's attention compute their softmax inside the attention kernel.
"""
from __future__ import annotations

import importlib.util
import logging

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)
_logged: set[str] = set()

FUSIONS = ("bias_activation_fusion", "bias_dropout_fusion", "apply_rope_fusion", "gradient_accumulation_fusion",
           "masked_softmax_fusion")


def choose_fusions(activation_func, gated_linear_unit: bool) -> dict[str, str | None]:
    """Per fusion (a TransformerConfig field): None when it is on, else why it is off."""
    compiled = _torch_compile_kernels_unavailable()
    swiglu = activation_func is F.silu and gated_linear_unit
    return {
        "bias_activation_fusion": compiled or (None if swiglu else "the MLP activation is not SwiGLU"),
        "bias_dropout_fusion": compiled,
        "apply_rope_fusion": _fused_rope_unavailable(),
        "gradient_accumulation_fusion": _gradient_accumulation_kernel_unavailable(),
        "masked_softmax_fusion": ("SDPA and Transformer Engine fuse the softmax in their attention kernels; "
                                  "DotProductAttention's fused softmax needs apex's CUDA kernels, not installed"),
    }


def fusion_kwargs(activation_func, gated_linear_unit: bool) -> dict[str, bool]:
    """The TransformerConfig fusion fields; logs (once per process and outcome) which are off and why."""
    decisions = choose_fusions(activation_func, gated_linear_unit)
    line = describe(decisions)
    if line not in _logged:
        _logged.add(line)
        log.info("%s", line)
    return {name: reason is None for name, reason in decisions.items()}


def describe(decisions: dict[str, str | None]) -> str:
    on = [name for name, reason in decisions.items() if reason is None]
    off = [f"{name} ({reason})" for name, reason in decisions.items() if reason is not None]
    return f"fused kernels on: {', '.join(on) or 'none'}; off: {'; '.join(off) or 'none'}"


def _torch_compile_kernels_unavailable() -> str | None:
    if not torch.cuda.is_available():
        return "no CUDA device: Megatron's fused kernel is torch.compile'd through Triton"
    if importlib.util.find_spec("triton") is None:
        return "triton is not installed: Megatron's fused kernel is torch.compile'd through it"
    return None


def _fused_rope_unavailable() -> str | None:
    from megatron.core.models.common.embeddings import rope_utils

    if rope_utils.fused_apply_rotary_pos_emb_thd is None:
        return "Transformer Engine's fused RoPE does not import here"
    return None


def _gradient_accumulation_kernel_unavailable() -> str | None:
    if not torch.cuda.is_available():
        return "no CUDA device"
    if importlib.util.find_spec("fused_weight_gradient_mlp_cuda") is None:
        return "apex's fused_weight_gradient_mlp_cuda is not installed (Megatron's output layer needs it)"
    return None
