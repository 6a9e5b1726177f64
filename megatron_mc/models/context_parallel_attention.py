"""Causal self-attention over a sequence split across context-parallel ranks, for Megatron-Core's local
layer spec (its own DotProductAttention refuses CP; Transformer Engine's attention does CP itself and is
used instead wherever TE imports).

Megatron-Core's zig-zag layout: the sequence is cut into 2 * cp chunks and CP rank r holds chunks r and
2 * cp - 1 - r. Each rank gathers the keys and values of the whole sequence from the CP group (Megatron's
"all_gather" CP scheme; the backward pass reduce-scatters their gradients back), puts them in sequence
order and lets its own queries attend to every key at or before their position.
"""
from __future__ import annotations

import functools
import math
from typing import Optional

import torch

from megatron_mc.algo.context_parallel import zigzag_indices


class AllGatherContextParallelAttention(torch.nn.Module):
    """A core_attention module: [s_local, b, heads, dim] queries and [s_local, b, groups, dim] keys and
    values in, [s_local, b, heads * dim] out, as Megatron-Core's attention block expects."""

    def __init__(self, config, layer_number: int, attn_mask_type, attention_type: str,
                 attention_dropout: Optional[float] = None, softmax_scale: Optional[float] = None,
                 cp_comm_type: Optional[str] = None, pg_collection=None):
        super().__init__()
        from megatron.core import parallel_state
        from megatron.core.transformer.enums import AttnMaskType

        unsupported = {"attn_mask_type": attn_mask_type != AttnMaskType.causal,
                       "apply_query_key_layer_scaling": config.apply_query_key_layer_scaling,
                       "window_size": config.window_size is not None,
                       "softmax_type": config.softmax_type != "vanilla"}
        named = [name for name, refused in unsupported.items() if refused]
        if named:
            raise ValueError(f"context-parallel attention without Transformer Engine supports plain causal "
                             f"self-attention only; this model sets {', '.join(named)}")
        self.config = config
        self.cp_group = (pg_collection.cp if pg_collection is not None and hasattr(pg_collection, "cp")
                         else parallel_state.get_context_parallel_group())
        tp = parallel_state.get_tensor_model_parallel_world_size()
        self.heads = config.num_attention_heads // tp
        self.groups = max(config.num_query_groups // tp, 1)
        self.head_dim = config.kv_channels
        self.softmax_scale = softmax_scale or 1.0 / math.sqrt(self.head_dim)
        self.dropout = config.attention_dropout if attention_dropout is None else attention_dropout

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                attention_mask: Optional[torch.Tensor], attn_mask_type=None, attention_bias=None,
                packed_seq_params=None) -> torch.Tensor:
        from megatron.core import tensor_parallel

        if packed_seq_params is not None or attention_bias is not None:
            raise ValueError("context-parallel attention without Transformer Engine takes padded batches only "
                             "(no packed sequences, no attention bias)")
        local = query.shape[0]
        sequence_order, visible = _zigzag_layout(local * self.cp_group.size(), self.cp_group.size(),
                                                 self.cp_group.rank(), query.device)
        key = tensor_parallel.gather_from_sequence_parallel_region(key, True, group=self.cp_group)
        value = tensor_parallel.gather_from_sequence_parallel_region(value, True, group=self.cp_group)
        key, value = key.index_select(0, sequence_order), value.index_select(0, sequence_order)
        if self.heads > self.groups:
            key = key.repeat_interleave(self.heads // self.groups, dim=2)
            value = value.repeat_interleave(self.heads // self.groups, dim=2)

        dropout = self.dropout if self.training else 0.0
        with tensor_parallel.get_cuda_rng_tracker().fork():
            context = torch.nn.functional.scaled_dot_product_attention(
                query.permute(1, 2, 0, 3), key.permute(1, 2, 0, 3), value.permute(1, 2, 0, 3),
                attn_mask=visible, dropout_p=dropout, scale=self.softmax_scale)  # [b, heads, s_local, dim]
        return context.permute(2, 0, 1, 3).reshape(local, query.shape[1], self.heads * self.head_dim)


@functools.lru_cache(maxsize=1)  # every layer of a forward asks for the same layout
def _zigzag_layout(seq: int, cp_size: int, cp_rank: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each sequence position sits among the gathered keys (rank order -> sequence order), and which
    keys this rank's queries see under causal attention: [s_local, seq] bool."""
    gathered_order = torch.cat([zigzag_indices(seq, cp_size, r) for r in range(cp_size)])
    query_positions = zigzag_indices(seq, cp_size, cp_rank)
    visible = torch.arange(seq)[None, :] <= query_positions[:, None]
    return torch.argsort(gathered_order).to(device), visible.to(device)
