"""From judged samples to per-sample advantages, in the order the algorithm defines:
shape rewards -> advantages over the whole group -> truncation mask -> dynamic-sampling filter.

The strategies (estimator, truncation mask) are chosen here from AlgoConfig by name, nowhere else.
"""
from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import torch

from megatron_mc.algo.advantages import compute_advantages
from megatron_mc.algo.config import AlgoConfig
from megatron_mc.algo.masks import (SampleMask, conditional_truncation_mask, filter_zero_variance_groups,
                                    mask_all_truncated, no_mask)
from megatron_mc.algo.reward_shaping import shape_rewards


@dataclass(frozen=True)
class JudgedBatch:
    """One entry per sample; samples answering the same prompt share a group id."""
    rewards: torch.Tensor | Sequence[float]
    group_ids: torch.Tensor | Sequence[Hashable]
    response_lengths: torch.Tensor | Sequence[int]
    max_length: int  # the response-length budget L_max the samples were generated with
    non_incorrect: torch.Tensor | Sequence[bool]  # verdict AC, or no complete program to judge
    response_token_ids: Sequence[torch.Tensor | Sequence[int]]
    entropies: torch.Tensor | None = None  # per-sample mean token entropy, for entropy_rescale


@dataclass(frozen=True)
class AdvantageResult:
    advantages: torch.Tensor  # [N], zero where the truncation mask masked the sample
    rewards: torch.Tensor  # [N], after reward shaping: what the advantages were computed from
    truncation: SampleMask  # which samples the truncation mask zeroed (for logging)
    informative: torch.Tensor  # [N] bool, False for samples of zero-variance groups under dynamic sampling

    def metrics(self) -> dict[str, float]:
        return {
            "truncation_masked_fraction": self.truncation.masked_fraction,
            "informative_fraction": float(self.informative.float().mean()) if self.informative.numel() else 0.0,
            "reward_mean": float(self.rewards.mean()) if self.rewards.numel() else 0.0,
            "advantage_abs_mean": float(self.advantages.abs().mean()) if self.advantages.numel() else 0.0,
        }


TruncationMask = Callable[[JudgedBatch, AlgoConfig, "torch.Generator | None"], SampleMask]

TRUNCATION_MASKS: dict[str, TruncationMask] = {
    "none": lambda batch, config, generator: no_mask(len(batch.response_token_ids)),
    "all": lambda batch, config, generator: mask_all_truncated(batch.response_lengths, batch.max_length),
    "conditional": lambda batch, config, generator: conditional_truncation_mask(
        batch.response_lengths, batch.max_length, batch.non_incorrect, batch.response_token_ids,
        rho=config.truncation_mask_rho, m=config.truncation_mask_repeat_window, generator=generator),
}


def compute_sample_advantages(batch: JudgedBatch, config: AlgoConfig,
                              generator: torch.Generator | None = None) -> AdvantageResult:
    """generator: seeded by the driver (e.g. from the step number) so the conditional mask is reproducible."""
    rewards = torch.as_tensor(batch.rewards, dtype=torch.float32).flatten()
    if config.overlong_penalty:
        rewards = shape_rewards(rewards, batch.response_lengths, batch.max_length, config.overlong_buffer_length,
                                config.overlong_penalty_factor)
    if config.entropy_rescale and batch.entropies is None:
        raise ValueError("algo.entropy_rescale is on but the batch carries no per-sample entropies; "
                         "compute them with the log-probs or set algo.entropy_rescale: false")
    advantages = compute_advantages(rewards, batch.group_ids, config.advantage_estimator, eps=config.advantage_eps,
                                    difficulty_rescale=config.difficulty_rescale,
                                    success_threshold=config.success_threshold,
                                    entropies=batch.entropies if config.entropy_rescale else None)
    truncation = TRUNCATION_MASKS[config.truncation_mask](batch, config, generator)
    informative = (filter_zero_variance_groups(batch.rewards, batch.group_ids) if config.dynamic_sampling
                   else torch.ones_like(truncation.keep))
    return AdvantageResult(advantages=truncation.apply(advantages), rewards=rewards, truncation=truncation,
                           informative=informative)
