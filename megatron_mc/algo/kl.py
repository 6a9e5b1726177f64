"""Per-token estimators of KL(pi_theta || pi_ref) from sampled tokens (Schulman, "Approximating KL
divergence"), chosen by name in `KL_ESTIMATORS`."""
from __future__ import annotations

from collections.abc import Callable

import torch

KlEstimator = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# exp of a log-ratio beyond +-20 overflows estimates and gradients long before it means anything
_LOG_RATIO_LIMIT = 20.0
_K3_LIMIT = 10.0


def clamp_log_ratio(log_ratio: torch.Tensor) -> torch.Tensor:
    return log_ratio.clamp(-_LOG_RATIO_LIMIT, _LOG_RATIO_LIMIT)


def k1(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """log pi - log pi_ref: unbiased, high variance, can be negative."""
    return logprobs - ref_logprobs


def k2(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """0.5 (log pi - log pi_ref)^2: biased, low variance, its gradient is that of the true KL's."""
    return 0.5 * (logprobs - ref_logprobs).square()


def k3(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """r - log r - 1 with r = pi_ref / pi: unbiased, non-negative, low variance (GRPO's choice).

    Clamped to [-10, 10] as verl does, so a few tokens with a huge ratio cannot dominate the loss.
    """
    log_ratio = clamp_log_ratio(ref_logprobs - logprobs)
    return (log_ratio.exp() - log_ratio - 1.0).clamp(-_K3_LIMIT, _K3_LIMIT)


KL_ESTIMATORS: dict[str, KlEstimator] = {"k1": k1, "k2": k2, "k3": k3}


def kl_penalty(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, estimator: str) -> torch.Tensor:
    if estimator not in KL_ESTIMATORS:
        raise ValueError(f"unknown KL estimator {estimator!r}; choose one of {sorted(KL_ESTIMATORS)}")
    return KL_ESTIMATORS[estimator](logprobs, ref_logprobs)
