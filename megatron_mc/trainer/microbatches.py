"""How a group of sequences becomes one micro-batch: the model's input (padded rows, or the sequences
packed back to back in one row) and, beside it, the per-sequence view the loss works on; and under
context parallelism each CP rank's part of both.

Two input layouts, the same loss view:
- padded: an [n, W] tensor, one sequence per row, right-padded to the widest (causal attention needs no
  mask: real tokens never see the padding after them);
- packed: a [1, T] row of segments, one per sequence (its tokens, then padding up to a multiple of 2 * cp),
  plus a filler segment that rounds T up to the row multiple (sequence parallelism, CP, FP8). Attention
  stays inside a segment (Megatron-Core's PackedSeqParams, THD format) and RoPE restarts in each one.

The model returns one value per input position; `gather_index` [n, L] says, for each sequence and each of
its positions this rank holds, where that value sits among the input positions, so the loss sees
[n, L] rows whatever the layout. Per-position tensors are in next-token layout: position t holds what is
known about predicting token t + 1 of the same sequence (a segment's last position predicts nothing).

Under context parallelism every segment (a padded row is a segment too) is cut into 2 * cp chunks and
CP rank r holds chunks r and 2 * cp - 1 - r (the zig-zag layout of Megatron-Core and Transformer
Engine; for packed rows, segment by segment, as TE's THD format wants).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional

import torch

from megatron_mc.algo.context_parallel import zigzag_indices
from megatron_mc.models.packed_segments import HOST_BOUNDARIES
from megatron_mc.trainer.balance import round_up
from megatron_mc.trainer.batch import TrainBatch
from megatron_mc.trainer.routing_replay import RouteShape, replay_routes, unrouted


def shard_indices(n: int, part: int, parts: int) -> list[int]:
    """Part `part` of `parts` contiguous shares of n sequences (the first n % parts get one more)."""
    base, extra = divmod(n, parts)
    start = part * base + min(part, extra)
    return list(range(start, start + base + (part < extra)))


@dataclass(frozen=True)
class Segments:
    """Where the segments of a packed row lie (global positions, before any CP split): what Megatron-Core's
    PackedSeqParams carries. The last segment may be filler."""

    bounds: list[int]  # [0, P_0, P_0 + P_1, ..., T]

    @property
    def longest(self) -> int:
        return max(b - a for a, b in zip(self.bounds, self.bounds[1:]))

    def packed_seq_params(self, device: torch.device):
        """THD parameters with each padded segment as one sequence: its pad tokens come after its real ones,
        so causal attention keeps the real tokens exact, and cu_seqlens equal to cu_seqlens_padded keeps
        Transformer Engine off its padding-between-sequences path (NaN in THD + CP backward,
        TransformerEngine#2186; a padded last sequence missed, #3331). `device`: where attention reads the
        boundaries; the host for the local layers (ours read the host copy, Megatron's unfused THD RoPE
        calls .tolist() on them per layer), the GPU for TE's kernels."""
        from megatron.core.packed_seq_params import PackedSeqParams

        bounds = torch.tensor(self.bounds, dtype=torch.int32).to(device, non_blocking=True)
        params = PackedSeqParams(qkv_format="thd", cu_seqlens_q=bounds, cu_seqlens_kv=bounds,
                                 cu_seqlens_q_padded=bounds, cu_seqlens_kv_padded=bounds,
                                 max_seqlen_q=self.longest, max_seqlen_kv=self.longest)
        setattr(params, HOST_BOUNDARIES, tuple(self.bounds))
        return params


@dataclass
class MicroBatch:
    # the model's input, [rows, width]: n rows (padded) or 1 row (packed)
    tokens: torch.Tensor
    positions: torch.Tensor  # position ids, restarting in every segment
    targets: torch.Tensor  # token t + 1 of the same sequence at position t, 0 where there is none
    segments: Optional[Segments]  # packed rows only
    # the loss view, [n, L]: each sequence's positions that this rank holds, in its order
    gather_index: torch.Tensor  # where each such position sits in tokens.flatten()
    response_mask: torch.Tensor  # bool: the position predicts a response token
    advantages: torch.Tensor  # [n]
    old_logprobs: Optional[torch.Tensor]  # zeros off the response
    rollout_logprobs: Optional[torch.Tensor]
    ref_logprobs: Optional[torch.Tensor]
    response_lengths: list[int]  # of the whole sequences, also in a context-parallel part
    num_tokens: int = 0  # response tokens in the loss view (counted on the host, before any move)
    indices: list[int] = field(default_factory=list)  # the sequences' positions in the batch it came from
    # each sequence's segment: its start in the flattened input and its padded length P_i
    segment_starts: list[int] = field(default_factory=list)
    segment_lengths: list[int] = field(default_factory=list)
    padding: bool = False  # a stand-in that only keeps this rank's schedule as long as the others'
    # routing replay: [rows, width, layers, topk] expert ids per input position (trainer/routing_replay.py)
    routes: Optional[torch.Tensor] = None

    @property
    def num_sequences(self) -> int:
        return len(self.response_lengths)

    def per_sequence(self, per_position: torch.Tensor) -> torch.Tensor:
        """The model's per-position values [rows, width] as the loss view [n, L], zero off the response."""
        picked = per_position.reshape(-1)[self.gather_index]
        return torch.where(self.response_mask, picked, torch.zeros((), dtype=picked.dtype, device=picked.device))

    def response_values(self, per_sequence: torch.Tensor) -> list[list[float]]:
        """Values in the whole micro-batch's loss view [n, L] back to one list per response."""
        return [row[mask].tolist() for row, mask in zip(per_sequence.detach().cpu(), self.response_mask.cpu())]

    def to(self, device: torch.device) -> "MicroBatch":
        """Every tensor on `device` (the loss mixes them with the logits there)."""
        def moved(t):
            return None if t is None else t.to(device, non_blocking=True)

        return replace(self, tokens=moved(self.tokens), positions=moved(self.positions), targets=moved(self.targets),
                       gather_index=moved(self.gather_index), response_mask=moved(self.response_mask),
                       advantages=moved(self.advantages), old_logprobs=moved(self.old_logprobs),
                       rollout_logprobs=moved(self.rollout_logprobs), ref_logprobs=moved(self.ref_logprobs),
                       routes=moved(self.routes))

    # ---- context parallelism ------------------------------------------------------------------------
    def context_part(self, cp_size: int, cp_rank: int) -> "MicroBatch":
        """What context-parallel rank `cp_rank` holds: its zig-zag part of every segment of the input, and
        the loss view of those positions (segment boundaries stay global, as PackedSeqParams wants)."""
        if cp_size == 1:
            return self
        rows, width = self.tokens.shape
        held = [zigzag_indices(length, cp_size, cp_rank) for length in self._all_segment_lengths()]
        order = torch.cat([start + h for start, h in zip(self._all_segment_starts(), held)])

        def input_part(t):
            return t.reshape(-1)[order].view(rows, width // cp_size)

        def routes_part(t):
            return None if t is None else t.reshape(rows * width, *t.shape[2:])[order].view(
                rows, width // cp_size, *t.shape[2:])

        n = self.num_sequences
        local_width = max(self.segment_lengths, default=0) // cp_size
        gather = torch.zeros((n, local_width), dtype=torch.long)
        picks = torch.zeros((n, local_width), dtype=torch.long)
        for i, (start, length) in enumerate(zip(self.segment_starts, self.segment_lengths)):
            gather[i, : length // cp_size] = torch.arange(start // cp_size, (start + length) // cp_size)
            picks[i, : length // cp_size] = held[i]
        in_segment = torch.arange(local_width)[None, :] < torch.tensor(self.segment_lengths)[:, None] // cp_size

        def loss_part(t):
            return None if t is None else torch.where(in_segment, t.gather(1, picks), torch.zeros((), dtype=t.dtype))

        mask = loss_part(self.response_mask)
        return replace(self, tokens=input_part(self.tokens), positions=input_part(self.positions),
                       targets=input_part(self.targets), routes=routes_part(self.routes),
                       gather_index=gather, response_mask=mask,
                       old_logprobs=loss_part(self.old_logprobs), rollout_logprobs=loss_part(self.rollout_logprobs),
                       ref_logprobs=loss_part(self.ref_logprobs), num_tokens=int(mask.sum()),
                       segment_starts=[s // cp_size for s in self.segment_starts],
                       segment_lengths=[length // cp_size for length in self.segment_lengths])

    def merge_context_parts(self, parts: list[torch.Tensor]) -> torch.Tensor:
        """Every CP rank's loss-view values [n, L / cp] (in rank order) as this whole micro-batch's [n, L]."""
        cp_size = len(parts)
        merged = torch.zeros(self.response_mask.shape, dtype=parts[0].dtype, device=parts[0].device)
        for i, length in enumerate(self.segment_lengths):
            for rank, part in enumerate(parts):
                held = zigzag_indices(length, cp_size, rank).to(part.device)
                merged[i, held] = part[i, : length // cp_size]
        return merged

    def _all_segment_starts(self) -> list[int]:
        """Segment starts including a packed row's filler (and a padding micro-batch's one segment)."""
        if self.segments is not None:
            return self.segments.bounds[:-1]
        rows, width = self.tokens.shape
        return [row * width for row in range(rows)]

    def _all_segment_lengths(self) -> list[int]:
        if self.segments is not None:
            bounds = self.segments.bounds
            return [b - a for a, b in zip(bounds, bounds[1:])]
        rows, width = self.tokens.shape
        return [width] * rows


def make_micro_batch(batch: TrainBatch, *, packed: bool = False, segment_multiple: int = 1, row_multiple: int = 1,
                     indices: Optional[list[int]] = None, pad_id: int = 0,
                     route_shape: Optional[RouteShape] = None, mark_unrouted: bool = False) -> MicroBatch:
    """The micro-batch of all of `batch`'s sequences. `indices`: their positions in the batch they came
    from (default 0..n-1). Packed, each sequence's segment is a multiple of segment_multiple and the row
    a multiple of row_multiple; padded, the rows' width is a multiple of row_multiple. `route_shape`:
    carry the batch's routed experts (every sequence must have them) for routing replay; `mark_unrouted`:
    positions no engine routed hold NOT_ROUTED, so the MoE diagnostics can leave them out."""
    indices = list(range(len(batch))) if indices is None else list(indices)
    lengths = [len(p) + len(r) for p, r in zip(batch.prompt_ids, batch.response_ids)]
    if packed:
        segment_lengths = [round_up(n, segment_multiple) for n in lengths]
        starts = [sum(segment_lengths[:i]) for i in range(len(lengths))]
        width = round_up(sum(segment_lengths), row_multiple)
        filler = width - sum(segment_lengths)
        bounds = [0] + [s + n for s, n in zip(starts, segment_lengths)] + ([width] if filler else [])
        segments, rows = Segments(bounds), 1
    else:
        width = round_up(max(lengths), row_multiple)
        rows, segments = len(lengths), None
        segment_lengths, starts = [width] * rows, [i * width for i in range(rows)]

    flat_tokens = torch.full((rows * width,), pad_id, dtype=torch.long)
    flat_targets = torch.zeros(rows * width, dtype=torch.long)
    flat_positions = torch.arange(rows * width) % width if not packed else torch.zeros(width, dtype=torch.long)
    longest = max(segment_lengths)
    gather = torch.zeros((len(lengths), longest), dtype=torch.long)
    mask = torch.zeros((len(lengths), longest), dtype=torch.bool)
    for i, (prompt, response) in enumerate(zip(batch.prompt_ids, batch.response_ids)):
        start, n = starts[i], lengths[i]
        sequence = torch.tensor(prompt + response)
        flat_tokens[start : start + n] = sequence
        flat_targets[start : start + n - 1] = sequence[1:]
        gather[i, : segment_lengths[i]] = torch.arange(start, start + segment_lengths[i])
        mask[i, len(prompt) - 1 : n - 1] = True
    if packed:
        for a, b in zip(segments.bounds, segments.bounds[1:]):
            flat_positions[a:b] = torch.arange(b - a)

    def per_position(rows_of_values):
        if rows_of_values is None:
            return None
        values = torch.zeros(mask.shape, dtype=torch.float32)
        for i, row in enumerate(rows_of_values):
            values[i, mask[i]] = torch.tensor(row, dtype=torch.float32)
        return values

    routes = None
    if route_shape is not None:
        routes = replay_routes(batch.routed_experts, batch.prompt_ids, batch.response_ids, starts, rows * width,
                               route_shape, indices, mark_unrouted)
        routes = routes.view(rows, width, route_shape.layers, route_shape.topk)
    return MicroBatch(tokens=flat_tokens.view(rows, width), positions=flat_positions.view(rows, width),
                      targets=flat_targets.view(rows, width), segments=segments, gather_index=gather,
                      response_mask=mask, advantages=torch.tensor(batch.advantages, dtype=torch.float32),
                      old_logprobs=per_position(batch.old_logprobs),
                      rollout_logprobs=per_position(batch.rollout_logprobs),
                      ref_logprobs=per_position(batch.ref_logprobs),
                      response_lengths=[len(r) for r in batch.response_ids], num_tokens=int(mask.sum()),
                      indices=indices, segment_starts=starts, segment_lengths=segment_lengths, routes=routes)


def padding_micro_batch(row_multiple: int = 1, pad_id: int = 0,
                        route_shape: Optional[RouteShape] = None) -> MicroBatch:
    """One row of `row_multiple` padding tokens and no sequence: it runs forward and backward like any
    micro-batch (so every collective inside the model is matched) and contributes nothing."""
    tokens = torch.full((1, row_multiple), pad_id, dtype=torch.long)
    nothing = torch.zeros((0, 0), dtype=torch.long)
    return MicroBatch(tokens=tokens, positions=torch.arange(row_multiple).view(1, -1),
                      targets=torch.zeros_like(tokens), segments=None, gather_index=nothing,
                      response_mask=nothing.bool(), advantages=torch.zeros(0), old_logprobs=None,
                      rollout_logprobs=None, ref_logprobs=None, response_lengths=[], padding=True,
                      routes=None if route_shape is None else unrouted(row_multiple, route_shape).view(
                          1, row_multiple, route_shape.layers, route_shape.topk))
