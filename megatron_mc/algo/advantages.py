"""Outcome-reward advantage estimators over groups of G responses to one prompt.

Every estimator maps (rewards [N], dense group index [N], n_groups, eps) to one advantage per sample; the
registry `ESTIMATORS` is the one place an estimator is chosen by name. Rescaling by difficulty and by
policy entropy is applied on top, whatever the estimator.
"""
from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

import torch

from megatron_mc.algo.groups import group_index, group_mean, group_size, group_std

Estimator = Callable[[torch.Tensor, torch.Tensor, int, float], torch.Tensor]


def grpo(rewards: torch.Tensor, index: torch.Tensor, n_groups: int, eps: float) -> torch.Tensor:
    """(r - mean) / (std + eps) within the group (DeepSeekMath's GRPO)."""
    return (rewards - group_mean(rewards, index, n_groups)) / (group_std(rewards, index, n_groups) + eps)


def grpo_no_std(rewards: torch.Tensor, index: torch.Tensor, n_groups: int, eps: float) -> torch.Tensor:
    """r - mean: Dr. GRPO drops the std division, which over-weights near-solved and near-failed prompts."""
    return rewards - group_mean(rewards, index, n_groups)


def rloo(rewards: torch.Tensor, index: torch.Tensor, n_groups: int, eps: float) -> torch.Tensor:
    """r_i minus the mean of the other G - 1 rewards, = G / (G - 1) * (r_i - mean); 0 for groups of one."""
    size = group_size(index, n_groups).to(rewards.dtype)
    scale = torch.where(size > 1, size / (size - 1).clamp(min=1), torch.zeros_like(size))
    return scale * (rewards - group_mean(rewards, index, n_groups))


def reinforce_pp_baseline(rewards: torch.Tensor, index: torch.Tensor, n_groups: int, eps: float) -> torch.Tensor:
    """REINFORCE++ with a group-mean baseline, then whitened over the whole batch (unbiased std)."""
    centred = rewards - group_mean(rewards, index, n_groups)
    std = centred.std() if centred.numel() > 1 else torch.zeros((), dtype=rewards.dtype)
    return (centred - centred.mean()) / (std + eps)


def grpo_passk(rewards: torch.Tensor, index: torch.Tensor, n_groups: int, eps: float) -> torch.Tensor:
    """Pass@k advantages (Tang et al. 2025, arXiv 2503.19595) with k = G.

    The leave-one-out estimate of the gradient of max-reward gives sample i the advantage
    max(group) - max(group without i): zero for all but the best sample, which gets r_max - r_second,
    divided by the group std (+ eps) as in GRPO. Ties for the best give every sample zero.
    """
    advantages = torch.zeros_like(rewards)
    for g in range(n_groups):
        members = (index == g).nonzero().flatten()
        if members.numel() < 2:
            raise ValueError(f"grpo_passk needs at least 2 samples per group; group #{g} has {members.numel()}")
        group = rewards[members]
        top2 = torch.topk(group, 2)
        best = members[top2.indices[0]]
        advantages[best] = (top2.values[0] - top2.values[1]) / (group.std() + eps)
    return advantages


ESTIMATORS: dict[str, Estimator] = {
    "grpo": grpo,
    "grpo_no_std": grpo_no_std,
    "rloo": rloo,
    "reinforce_pp_baseline": reinforce_pp_baseline,
    "grpo_passk": grpo_passk,
}


def difficulty_weights(rewards: torch.Tensor, index: torch.Tensor, n_groups: int,
                       success_threshold: float) -> torch.Tensor:
    """1 - the group's success rate (reward >= success_threshold): hard prompts weigh more."""
    solved = (rewards >= success_threshold).to(rewards.dtype)
    return 1.0 - group_mean(solved, index, n_groups)


def entropy_weights(entropies: torch.Tensor, index: torch.Tensor, n_groups: int) -> torch.Tensor:
    """A sample's mean token entropy over its group's mean: exploratory samples weigh more.

    A group whose mean entropy is 0 keeps weight 1 (nothing to compare with).
    """
    mean = group_mean(entropies, index, n_groups)
    return torch.where(mean > 0, entropies / torch.where(mean > 0, mean, torch.ones_like(mean)),
                       torch.ones_like(mean))


def compute_advantages(rewards: torch.Tensor, group_ids: torch.Tensor | Sequence[Hashable], estimator: str, *,
                       eps: float = 1e-6, difficulty_rescale: bool = False, success_threshold: float = 1.0,
                       entropies: torch.Tensor | None = None) -> torch.Tensor:
    """One advantage per sample (float32 [N]) from its scalar reward and the group it belongs to.

    group_ids: any hashable per sample (a tensor or a list), samples of one prompt share it.
    difficulty_rescale: multiply by 1 - the group's success rate (reward >= success_threshold).
    entropies: per-sample mean token entropy; when given, multiply by entropy / the group's mean entropy.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown advantage estimator {estimator!r}; choose one of {sorted(ESTIMATORS)}")
    rewards = torch.as_tensor(rewards, dtype=torch.float32).flatten()
    index, n_groups = group_index(group_ids)
    if index.numel() != rewards.numel():
        raise ValueError(f"compute_advantages: {rewards.numel()} rewards but {index.numel()} group ids")
    advantages = ESTIMATORS[estimator](rewards, index, n_groups, eps)
    if difficulty_rescale:
        advantages = advantages * difficulty_weights(rewards, index, n_groups, success_threshold)
    if entropies is not None:
        entropies = torch.as_tensor(entropies, dtype=torch.float32).flatten()
        if entropies.numel() != rewards.numel():
            raise ValueError(f"compute_advantages: {rewards.numel()} rewards but {entropies.numel()} entropies")
        advantages = advantages * entropy_weights(entropies, index, n_groups)
    return advantages
