"""Causal self-attention over sequences split across context-parallel ranks, for Megatron-Core's local
layer spec (its own DotProductAttention refuses CP; Transformer Engine's attention does CP itself and is
used instead wherever TE imports).

Megatron-Core's zig-zag layout: a sequence is cut into 2 * cp chunks and CP rank r holds chunks r and
2 * cp - 1 - r; a packed (THD) micro-batch is split that way segment by segment (packed_segments.py). Each
rank gathers the keys and values of the whole micro-batch from the CP group (Megatron's "all_gather" CP
scheme; the backward pass reduce-scatters their gradients back), puts them in sequence order and lets its
own queries attend, segment by segment, to every key at or before their position.
"""
from __future__ import annotations

from typing import Optional

import torch

from megatron_mc.models.packed_segments import check_total, segment_boundaries, zigzag_layout
from megatron_mc.models.sdpa_attention import (attend, check_forward_inputs, check_plain_causal,
                                               default_softmax_scale, dropout_rng, heads_first, sequence_first)


class AllGatherContextParallelAttention(torch.nn.Module):
    """A core_attention module: this rank's [s_local, b, heads, dim] queries and [s_local, b, groups, dim]
    keys and values in, [s_local, b, heads * dim] out; packed, [t_local, heads, dim] and
    [t_local, groups, dim] in, [t_local, heads * dim] out."""

    def __init__(self, config, layer_number: int, attn_mask_type, attention_type: str,
                 attention_dropout: Optional[float] = None, softmax_scale: Optional[float] = None,
                 cp_comm_type: Optional[str] = None, pg_collection=None):
        super().__init__()
        from megatron.core import parallel_state

        check_plain_causal(config, attn_mask_type, "context-parallel attention without Transformer Engine")
        self.config = config
        self.cp_group = (pg_collection.cp if pg_collection is not None and hasattr(pg_collection, "cp")
                         else parallel_state.get_context_parallel_group())
        self.softmax_scale = default_softmax_scale(config, softmax_scale)
        self.dropout = config.attention_dropout if attention_dropout is None else attention_dropout

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                attention_mask: Optional[torch.Tensor], attn_mask_type=None, attention_bias=None,
                packed_seq_params=None) -> torch.Tensor:
        from megatron.core import tensor_parallel

        check_forward_inputs(attention_mask, attn_mask_type, attention_bias)
        cp = self.cp_group.size()
        if packed_seq_params is None:
            boundaries = (0, query.shape[0] * cp)
        else:
            boundaries = segment_boundaries(packed_seq_params)
            check_total(boundaries, query.shape[0], cp)
        sequence_order, visible = zigzag_layout(boundaries, cp, self.cp_group.rank(), query.device)
        key = tensor_parallel.gather_from_sequence_parallel_region(key, True, group=self.cp_group)
        value = tensor_parallel.gather_from_sequence_parallel_region(value, True, group=self.cp_group)
        key, value = key.index_select(0, sequence_order), value.index_select(0, sequence_order)

        dropout = self.dropout if self.training else 0.0
        parts = []
        with dropout_rng(self.config, dropout):
            for (start, end), seen in zip(zip(boundaries[:-1], boundaries[1:]), visible):
                if end == start:
                    continue
                local = slice(start // cp, end // cp)
                parts.append(attend(heads_first(query[local]), heads_first(key[start:end]),
                                    heads_first(value[start:end]), self.softmax_scale, dropout, seen))
        return sequence_first(parts, packed=packed_seq_params is not None)
