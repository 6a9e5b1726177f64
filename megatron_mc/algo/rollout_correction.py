"""Corrections for the mismatch between the inference engine's log-probs (rollout) and the trainer's
(old policy, same weights, different kernels), chosen by name in `ROLLOUT_CORRECTIONS`.

Each returns a detached per-token weight on the policy-gradient loss, from k = pi_old / pi_rollout:
  tis:    min(k, cap)                      truncated importance sampling (Yao et al., 2025)
  icepop: k inside [low, high], else 0     IcePop (Ring-1T): tokens the engines disagree on are dropped
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from megatron_mc.algo.config import AlgoConfig
from megatron_mc.algo.kl import clamp_log_ratio

Correction = Callable[[torch.Tensor, AlgoConfig], torch.Tensor]


def _truncated_importance_sampling(k: torch.Tensor, config: AlgoConfig) -> torch.Tensor:
    return k.clamp(max=config.tis_cap)


def _icepop(k: torch.Tensor, config: AlgoConfig) -> torch.Tensor:
    inside = (k >= config.icepop_low) & (k <= config.icepop_high)
    return torch.where(inside, k, torch.zeros_like(k))


ROLLOUT_CORRECTIONS: dict[str, Correction] = {
    "tis": _truncated_importance_sampling,
    "icepop": _icepop,
}


def rollout_weights(old_logprobs: torch.Tensor, rollout_logprobs: torch.Tensor | None,
                    config: AlgoConfig) -> torch.Tensor | None:
    """Per-token weights, or None when rollout_correction is "none"."""
    if config.rollout_correction == "none":
        return None
    if rollout_logprobs is None:
        raise ValueError(f"algo.rollout_correction={config.rollout_correction!r} needs the rollout log-probs; "
                         "pass rollout_logprobs (the engine's per-token log-probs) or set it to 'none'")
    with torch.no_grad():
        log_k = clamp_log_ratio(old_logprobs - rollout_logprobs)
        return ROLLOUT_CORRECTIONS[config.rollout_correction](log_k.exp(), config)
