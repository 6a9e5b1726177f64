"""Core attention for Megatron-Core's local layer spec on torch's scaled_dot_product_attention.

Megatron-Core's own local DotProductAttention materializes [b, heads, s, s] scores in fp32 (quadratic
memory, no packed sequences). SDPA with is_causal=True and no mask takes the flash kernel on CUDA (GQA
included, without copying keys and values per head) and stays linear in memory; packed sequences (THD)
run one causal SDPA call per segment, so no [t, t] mask is ever built.
"""
from __future__ import annotations

import contextlib
import math
from typing import Optional

import torch

from megatron_mc.models.packed_segments import check_total, segment_boundaries


class SDPAttention(torch.nn.Module):
    """A core_attention module: [s, b, heads, dim] queries and [s, b, groups, dim] keys and values in,
    [s, b, heads * dim] out; packed, [t, heads, dim] and [t, groups, dim] in, [t, heads * dim] out."""

    def __init__(self, config, layer_number: int, attn_mask_type, attention_type: str,
                 attention_dropout: Optional[float] = None, softmax_scale: Optional[float] = None,
                 cp_comm_type: Optional[str] = None, pg_collection=None):
        super().__init__()
        check_plain_causal(config, attn_mask_type, "SDPA attention (model.local_attention: sdpa)")
        if config.context_parallel_size > 1:
            raise ValueError("SDPA attention does not split sequences across context-parallel ranks; the layer "
                             "spec uses AllGatherContextParallelAttention under cp > 1")
        self.config = config
        self.softmax_scale = default_softmax_scale(config, softmax_scale)
        self.dropout = config.attention_dropout if attention_dropout is None else attention_dropout

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                attention_mask: Optional[torch.Tensor], attn_mask_type=None, attention_bias=None,
                packed_seq_params=None) -> torch.Tensor:
        check_forward_inputs(attention_mask, attn_mask_type, attention_bias)
        if packed_seq_params is None:
            boundaries = (0, query.shape[0])
        else:
            boundaries = segment_boundaries(packed_seq_params)
            check_total(boundaries, query.shape[0], 1)
        dropout = self.dropout if self.training else 0.0
        with dropout_rng(self.config, dropout):
            parts = [attend(heads_first(query[start:end]), heads_first(key[start:end]),
                            heads_first(value[start:end]), self.softmax_scale, dropout)
                     for start, end in zip(boundaries[:-1], boundaries[1:]) if end > start]
        return sequence_first(parts, packed=packed_seq_params is not None)


def attend(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float, dropout: float,
           visible: Optional[torch.Tensor] = None) -> torch.Tensor:
    """[..., heads, q, dim] queries over [..., groups, k, dim] keys and values: causal (top-left) without
    `visible`, else where `visible` [q, k] is True."""
    repeat = query.shape[-3] // key.shape[-3]
    if visible is None:
        return torch.nn.functional.scaled_dot_product_attention(
            query, key, value, dropout_p=dropout, is_causal=True, scale=scale, enable_gqa=repeat > 1)
    # A mask rules out flash; with keys repeated per head the memory-efficient kernel (no GQA) still takes it.
    key, value = key.repeat_interleave(repeat, dim=-3), value.repeat_interleave(repeat, dim=-3)
    return torch.nn.functional.scaled_dot_product_attention(
        query, key, value, attn_mask=visible, dropout_p=dropout, scale=scale)


def heads_first(x: torch.Tensor) -> torch.Tensor:
    """[s, b, heads, dim] -> [b, heads, s, dim]; packed [t, heads, dim] -> [1, heads, t, dim] (SDPA's fused
    CUDA kernels take 4-D tensors only)."""
    return x.movedim(0, -2) if x.dim() == 4 else x.movedim(0, -2).unsqueeze(0)


def sequence_first(parts: list[torch.Tensor], packed: bool) -> torch.Tensor:
    """heads_first's layout back for the segments' contexts in order, heads folded into the hidden
    dimension: [s, b, heads * dim], or packed [t, heads * dim] (Megatron-Core's attention block reshapes
    it to [t, 1, heads * dim])."""
    context = (parts[0] if len(parts) == 1 else torch.cat(parts, dim=-2)).movedim(-2, 0)
    return context.reshape(context.shape[0], -1) if packed else context.reshape(*context.shape[:2], -1)


def default_softmax_scale(config, softmax_scale: Optional[float]) -> float:
    """The scale Megatron passes (config.softmax_scale from its attention block), else 1 / sqrt(dim)."""
    for scale in (softmax_scale, config.softmax_scale):
        if scale is not None:
            return scale
    return 1.0 / math.sqrt(config.kv_channels)


def dropout_rng(config, dropout: float):
    """Attention dropout draws from Megatron's model-parallel RNG (heads differ across TP ranks), as its
    DotProductAttention does; under sequence parallelism the transformer block has forked it already."""
    if dropout == 0.0 or config.sequence_parallel:
        return contextlib.nullcontext()
    from megatron.core import tensor_parallel

    return tensor_parallel.get_cuda_rng_tracker().fork()


def check_plain_causal(config, attn_mask_type, module: str) -> None:
    """Refuse, by name, the model settings that plain causal SDPA cannot express."""
    from megatron.core.transformer.enums import AttnMaskType

    unsupported = {"attn_mask_type": attn_mask_type != AttnMaskType.causal,
                   "apply_query_key_layer_scaling": config.apply_query_key_layer_scaling,
                   "window_size": config.window_size is not None,
                   "softmax_type": config.softmax_type != "vanilla"}
    named = [name for name, refused in unsupported.items() if refused]
    if named:
        raise ValueError(f"{module} supports plain causal self-attention only; this model sets "
                         f"{', '.join(named)} (use Transformer Engine's layers for those)")


def check_forward_inputs(attention_mask, attn_mask_type, attention_bias) -> None:
    from megatron.core.transformer.enums import AttnMaskType

    if attention_mask is not None:
        raise ValueError("attention without Transformer Engine takes attention_mask=None: right-padded batches "
                         "need no mask under causal attention; pack sequences with PackedSeqParams (thd) instead")
    if attn_mask_type not in (None, AttnMaskType.causal):
        raise ValueError(f"attention without Transformer Engine is causal only; got attn_mask_type {attn_mask_type}")
    if attention_bias is not None:
        raise ValueError("attention without Transformer Engine takes no attention_bias")
