"""Where the sequences of a packed (THD) micro-batch sit, as core attention needs it.

Megatron-Core passes packed sequences as PackedSeqParams(qkv_format="thd"): the sequences lie back to
back, segment i spanning [cu_seqlens_q_padded[i], cu_seqlens_q_padded[i + 1]) with its real tokens first
and its pad tokens after them (cu_seqlens_q alone when there is no padding). Attention is causal within a
segment and never crosses segments; pad tokens sit after the real ones, so no real token ever sees them.

Under context parallelism every segment is cut into 2 * cp zig-zag chunks and rank r holds chunks r and
2 * cp - 1 - r of each, segment after segment (Transformer Engine's THD + CP layout, the one Megatron's
THD RoPE assumes): segment i's part on a rank starts at cu_seqlens_q_padded[i] / cp. A padded batch is the
one-segment case.
"""
from __future__ import annotations

import functools

import torch

from megatron_mc.algo.context_parallel import zigzag_indices

_host_copy: tuple = (None, -1, ())
# The trainer builds PackedSeqParams from boundaries it holds on the host and leaves them on the object
# under this name, so attention never reads them back from the device (a sync per micro-batch).
HOST_BOUNDARIES = "host_padded_boundaries"


def segment_boundaries(packed_seq_params) -> tuple[int, ...]:
    """[0, P_0, P_0 + P_1, ..., T] on the host: where each segment of the packed micro-batch begins."""
    if packed_seq_params.qkv_format != "thd":
        raise ValueError(f"packed_seq_params.qkv_format is {packed_seq_params.qkv_format!r}; attention without "
                         "Transformer Engine takes packed sequences as 'thd' only (or a padded batch without "
                         "packed_seq_params)")
    known = getattr(packed_seq_params, HOST_BOUNDARIES, None)
    if known is not None:
        return tuple(known)
    boundaries = packed_seq_params.cu_seqlens_q_padded
    if boundaries is None:
        boundaries = packed_seq_params.cu_seqlens_q
    if boundaries is None:
        raise ValueError("packed_seq_params has neither cu_seqlens_q_padded nor cu_seqlens_q; set the segment "
                         "boundaries [0, P_0, P_0 + P_1, ..., T]")
    return _on_host(boundaries)


def _on_host(boundaries: torch.Tensor) -> tuple[int, ...]:
    """Every layer of a forward asks for the same tensor: copy it to the host (a device sync) once."""
    global _host_copy
    cached, version, values = _host_copy
    if cached is not boundaries or version != boundaries._version:
        _host_copy = (boundaries, boundaries._version, tuple(boundaries.tolist()))
    return _host_copy[2]


def check_total(boundaries: tuple[int, ...], local_tokens: int, cp_size: int) -> None:
    if boundaries[-1] != local_tokens * cp_size:
        raise ValueError(f"packed_seq_params: the segment boundaries end at {boundaries[-1]} tokens but the "
                         f"micro-batch holds {local_tokens} per rank x cp {cp_size} = {local_tokens * cp_size}; "
                         "cu_seqlens_q_padded must end at the packed length")


@functools.lru_cache(maxsize=4)  # every layer of a forward (and its recomputation) asks for the same layout
def zigzag_layout(boundaries: tuple[int, ...], cp_size: int, cp_rank: int,
                  device: torch.device) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """For keys gathered from every CP rank (rank order): the permutation that puts them in packed sequence
    order, and per segment which of its keys this rank's queries see under causal attention
    ([P_i / cp, P_i] bool)."""
    segments = list(zip(boundaries[:-1], boundaries[1:]))
    gathered_positions = torch.cat([start + zigzag_indices(end - start, cp_size, rank)
                                    for rank in range(cp_size) for start, end in segments])
    visible = []
    for start, end in segments:
        query_positions = zigzag_indices(end - start, cp_size, cp_rank)
        visible.append((torch.arange(end - start)[None, :] <= query_positions[:, None]).to(device, non_blocking=True))
    # non_blocking: from pageable memory the copy is staged at once, without waiting for the device's queue
    return torch.argsort(gathered_positions).to(device, non_blocking=True), visible
