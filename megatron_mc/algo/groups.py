"""Per-group statistics over a flat batch of samples, where each sample names the group (prompt) it answers."""
from __future__ import annotations

from collections.abc import Hashable, Sequence

import torch


def group_index(group_ids: torch.Tensor | Sequence[Hashable]) -> tuple[torch.Tensor, int]:
    """Dense group numbers 0..n_groups-1 for each sample, in order of first appearance, and n_groups."""
    if isinstance(group_ids, torch.Tensor):
        keys = group_ids.tolist()
    else:
        keys = list(group_ids)
    dense: dict[Hashable, int] = {}
    index = [dense.setdefault(key, len(dense)) for key in keys]
    return torch.tensor(index, dtype=torch.long), len(dense)


def group_sum(values: torch.Tensor, index: torch.Tensor, n_groups: int) -> torch.Tensor:
    return torch.zeros(n_groups, dtype=values.dtype).index_add_(0, index, values)


def group_mean(values: torch.Tensor, index: torch.Tensor, n_groups: int) -> torch.Tensor:
    """Mean of each sample's group, broadcast back to the samples."""
    counts = group_sum(torch.ones_like(values), index, n_groups)
    return (group_sum(values, index, n_groups) / counts)[index]


def group_size(index: torch.Tensor, n_groups: int) -> torch.Tensor:
    """Size of each sample's group, broadcast back to the samples."""
    return torch.bincount(index, minlength=n_groups)[index]


def group_std(values: torch.Tensor, index: torch.Tensor, n_groups: int) -> torch.Tensor:
    """Unbiased (n - 1) standard deviation of each sample's group, as torch.std; 0 for groups of one."""
    centred = values - group_mean(values, index, n_groups)
    size = group_size(index, n_groups).to(values.dtype)
    square_sum = group_sum(centred * centred, index, n_groups)[index]
    return torch.where(size > 1, (square_sum / (size - 1).clamp(min=1)).sqrt(), torch.zeros_like(values))
