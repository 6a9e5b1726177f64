"""Sample masks applied to advantages: MicroCoder's conditional truncation mask, its baselines, and
DAPO's dynamic-sampling filter. A mask never changes group statistics: advantages are computed over the
whole group first, and the mask then zeroes the advantages of the masked samples."""
from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import torch

from megatron_mc.algo.groups import group_index, group_std


@dataclass(frozen=True)
class SampleMask:
    """keep[i] is False where sample i's advantage is zeroed; masked = ~keep, kept for logging."""
    keep: torch.Tensor
    masked: torch.Tensor

    @staticmethod
    def from_masked(masked: torch.Tensor) -> "SampleMask":
        masked = masked.to(torch.bool)
        return SampleMask(keep=~masked, masked=masked)

    def apply(self, advantages: torch.Tensor) -> torch.Tensor:
        return advantages * self.keep.to(advantages.dtype)

    @property
    def masked_fraction(self) -> float:
        return float(self.masked.float().mean()) if self.masked.numel() else 0.0


def no_mask(n_samples: int) -> SampleMask:
    return SampleMask.from_masked(torch.zeros(n_samples, dtype=torch.bool))


def mask_all_truncated(response_lengths: torch.Tensor | Sequence[int], max_length: int) -> SampleMask:
    """DeepCoder's baseline: every response that reached the maximum length is masked."""
    return SampleMask.from_masked(_truncated(response_lengths, max_length))


def ends_in_repeat(token_ids: torch.Tensor | Sequence[int], m: int) -> bool:
    """repeat(o, m): the last m tokens equal the m tokens before them (False if shorter than 2m)."""
    tokens = torch.as_tensor(token_ids, dtype=torch.long).flatten()
    if tokens.numel() < 2 * m:
        return False
    return bool(torch.equal(tokens[-m:], tokens[-2 * m:-m]))


def conditional_truncation_mask(response_lengths: torch.Tensor | Sequence[int], max_length: int,
                                non_incorrect: torch.Tensor | Sequence[bool],
                                response_token_ids: Sequence[torch.Tensor | Sequence[int]], rho: float,
                                m: int = 128, generator: torch.Generator | None = None) -> SampleMask:
    """MicroCoder-GRPO's mask (arXiv 2603.07777): sample i is masked when all four hold:
    |o_i| = L_max, non-incorrect(o_i), not repeat(o_i, m), and U(0, 1) < rho.

    A truncated response that is not shown wrong may have been right had it been allowed to finish, so
    punishing it is noise; one stuck repeating itself deserves its penalty. One uniform draw is taken per
    sample, for every sample, so the draws depend only on the generator's state and the batch size.
    """
    truncated = _truncated(response_lengths, max_length)
    n = truncated.numel()
    non_incorrect = torch.as_tensor(non_incorrect, dtype=torch.bool).flatten()
    if non_incorrect.numel() != n or len(response_token_ids) != n:
        raise ValueError(f"conditional_truncation_mask: {n} lengths, {non_incorrect.numel()} non_incorrect flags "
                         f"and {len(response_token_ids)} token sequences; give one of each per sample")
    if not 0.0 <= rho <= 1.0:
        raise ValueError(f"conditional_truncation_mask: rho must be in [0, 1], got {rho}")
    draws = torch.rand(n, generator=generator)
    repeats = torch.tensor([ends_in_repeat(tokens, m) for tokens in response_token_ids], dtype=torch.bool)
    return SampleMask.from_masked(truncated & non_incorrect & ~repeats & (draws < rho))


def filter_zero_variance_groups(rewards: torch.Tensor | Sequence[float],
                                group_ids: torch.Tensor | Sequence[Hashable]) -> torch.Tensor:
    """DAPO's dynamic sampling: True for samples whose group's rewards differ, False where all are equal
    (such a group has zero advantages and only dilutes the batch; the driver drops and refills it)."""
    rewards = torch.as_tensor(rewards, dtype=torch.float32).flatten()
    index, n_groups = group_index(group_ids)
    return group_std(rewards, index, n_groups) > 0


def _truncated(response_lengths: torch.Tensor | Sequence[int], max_length: int) -> torch.Tensor:
    # >= rather than ==: a length past the budget (an engine that counts the stop token) is still truncated
    return torch.as_tensor(response_lengths, dtype=torch.long).flatten() >= max_length
