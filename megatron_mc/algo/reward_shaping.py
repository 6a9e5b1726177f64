"""DAPO's soft over-long punishment (arXiv 2503.14476, eq. 13), added to the outcome reward.

With L_max the response budget and L_cache the buffer before it, a response of length |y| gets
0 if |y| <= L_max - L_cache, (L_max - L_cache - |y|) / L_cache inside the buffer, -1 beyond L_max;
scaled by a factor. Off by default (AlgoConfig.overlong_penalty).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch


def overlong_penalty(response_lengths: torch.Tensor | Sequence[int], max_length: int, buffer_length: int,
                     factor: float = 1.0) -> torch.Tensor:
    if not 0 < buffer_length <= max_length:
        raise ValueError(f"overlong_penalty: buffer_length must be in (0, max_length={max_length}], "
                         f"got {buffer_length}")
    lengths = torch.as_tensor(response_lengths, dtype=torch.float32).flatten()
    start = max_length - buffer_length
    inside = ((start - lengths) / buffer_length).clamp(max=0.0)
    return factor * torch.where(lengths > max_length, torch.full_like(lengths, -1.0), inside)


def shape_rewards(rewards: torch.Tensor | Sequence[float], response_lengths: torch.Tensor | Sequence[int],
                  max_length: int, buffer_length: int, factor: float = 1.0) -> torch.Tensor:
    rewards = torch.as_tensor(rewards, dtype=torch.float32).flatten()
    return rewards + overlong_penalty(response_lengths, max_length, buffer_length, factor)
