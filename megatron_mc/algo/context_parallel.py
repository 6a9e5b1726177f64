"""Zig-zag sequence splitting for context parallelism, as Megatron-Core lays it out.

The sequence is cut into 2 * cp chunks; CP rank r holds chunks r and 2 * cp - 1 - r, so with causal
attention every rank gets an equal share of the work. Per-token quantities (log-probs, losses) computed
on a rank's part are exact; only per-sequence sums need a reduction over the CP group.
"""
from __future__ import annotations

import math

import torch
import torch.distributed as dist


def zigzag_indices(seq_len: int, cp_size: int, cp_rank: int) -> torch.Tensor:
    """Positions (along the sequence) that CP rank `cp_rank` holds, in the order it holds them."""
    if seq_len % (2 * cp_size):
        raise ValueError(f"zig-zag context parallel needs the sequence length ({seq_len}) to be a multiple of "
                         f"2 * cp_size = {2 * cp_size}; pad the batch to that multiple")
    if not 0 <= cp_rank < cp_size:
        raise ValueError(f"cp_rank {cp_rank} is outside [0, {cp_size})")
    chunk = seq_len // (2 * cp_size)
    first = torch.arange(cp_rank * chunk, (cp_rank + 1) * chunk)
    second_start = (2 * cp_size - 1 - cp_rank) * chunk
    return torch.cat([first, torch.arange(second_start, second_start + chunk)])


def zigzag_split(x: torch.Tensor, cp_size: int, cp_rank: int, dim: int = 1) -> torch.Tensor:
    """This CP rank's part of `x` along the sequence dimension `dim`."""
    return x.index_select(dim, zigzag_indices(x.shape[dim], cp_size, cp_rank).to(x.device))


def zigzag_merge(parts: list[torch.Tensor], dim: int = 1) -> torch.Tensor:
    """Inverse of zigzag_split: the full sequence from every rank's part, in rank order."""
    cp_size = len(parts)
    seq_len = sum(p.shape[dim] for p in parts)
    order = torch.cat([zigzag_indices(seq_len, cp_size, r) for r in range(cp_size)])
    full = torch.cat(parts, dim=dim)
    return full.index_select(dim, torch.argsort(order).to(full.device))


def all_reduce_sum(x: torch.Tensor, group: dist.ProcessGroup | None) -> torch.Tensor:
    """Sum of a detached statistic over `group`; unchanged when there is no group (CP = 1)."""
    if group is None:
        return x
    x = x.detach().clone()
    dist.all_reduce(x, op=dist.ReduceOp.SUM, group=group)
    return x


def reduce_metrics(metrics: dict[str, torch.Tensor], local_tokens: int, group: dist.ProcessGroup | None
                   ) -> dict[str, torch.Tensor]:
    """policy_loss's metrics (0-dim tensors) of each CP rank's part, as the metrics of the whole
    micro-batch: the losses (`*loss`) add up, `*_min` / `*_max` take the extreme over the parts that hold
    response tokens, the rest are token-weighted means. Two all-reduces, no host synchronization."""
    if group is None or dist.get_world_size(group) == 1:
        return dict(metrics)
    keys = sorted(metrics)
    additive = [k for k in keys if k.endswith("loss")]
    lowest = [k for k in keys if k.endswith("_min")]
    highest = [k for k in keys if k.endswith("_max")]
    means = [k for k in keys if k not in additive + lowest + highest]
    value = {k: metrics[k].detach().to(torch.float64) for k in keys}
    device = value[keys[0]].device if keys else None
    # torch.full, not torch.tensor(..., device=): a fill kernel instead of a host-to-device copy that waits
    tokens = torch.full((), float(local_tokens), dtype=torch.float64, device=device)
    held = tokens > 0  # a part without response tokens reports placeholders for its extremes
    sums = torch.stack([value[k] for k in additive] + [value[k] * tokens for k in means] + [tokens])
    # the maxima as minima of their negatives, so that one MIN reduction serves both
    inf = torch.full((), math.inf, dtype=torch.float64, device=device)
    mins = torch.stack([torch.where(held, value[k], inf) for k in lowest]
                       + [torch.where(held, -value[k], inf) for k in highest] + [inf])
    dist.all_reduce(sums, op=dist.ReduceOp.SUM, group=group)
    dist.all_reduce(mins, op=dist.ReduceOp.MIN, group=group)
    total = sums[-1].clamp(min=1.0)
    reduced = {k: sums[i] for i, k in enumerate(additive)}
    reduced |= {k: sums[len(additive) + i] / total for i, k in enumerate(means)}
    reduced |= {k: torch.where(torch.isfinite(mins[i]), mins[i], value[k]) for i, k in enumerate(lowest)}
    reduced |= {k: torch.where(torch.isfinite(mins[len(lowest) + i]), -mins[len(lowest) + i], value[k])
                for i, k in enumerate(highest)}
    return reduced


def metric_values(metrics: dict) -> dict:
    """Tensor metrics (0-dim, under any sortable keys) as floats, with one device synchronization for all."""
    keys = sorted(metrics)
    if not keys:
        return {}
    values = torch.stack([metrics[k].detach().to(torch.float64).reshape(()) for k in keys]).tolist()
    return dict(zip(keys, values))
