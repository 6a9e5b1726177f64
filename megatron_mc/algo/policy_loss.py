"""The clipped policy-gradient loss with its variants, and the metrics a run logs about it.

Tensors are [B, T] (padded responses); advantages are [B] (one per sequence) or [B, T]. Under context
parallelism pass the CP group: each rank passes its zig-zag part of every sequence and the ranks' losses
add up to the loss of the whole batch (per-sequence counts and GSPO's sequence ratios are reduced over
the group, detached). Metrics are this rank's, as detached 0-dim tensors on the loss's device: reading
them (float()) waits for the device, so a trainer collects them and reads them once per step.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist

from megatron_mc.algo.aggregation import AGGREGATIONS, SequenceStats
from megatron_mc.algo.config import AlgoConfig
from megatron_mc.algo.context_parallel import all_reduce_sum
from megatron_mc.algo.kl import clamp_log_ratio, k3, kl_penalty
from megatron_mc.algo.rollout_correction import rollout_weights

LogRatio = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, SequenceStats, "dist.ProcessGroup | None"],
                    torch.Tensor]


def token_log_ratio(logprobs: torch.Tensor, old_logprobs: torch.Tensor, mask: torch.Tensor, stats: SequenceStats,
                    group: dist.ProcessGroup | None) -> torch.Tensor:
    """PPO's per-token log(pi / pi_old)."""
    return clamp_log_ratio(logprobs - old_logprobs)


def sequence_log_ratio(logprobs: torch.Tensor, old_logprobs: torch.Tensor, mask: torch.Tensor, stats: SequenceStats,
                       group: dist.ProcessGroup | None) -> torch.Tensor:
    """GSPO-token (arXiv 2507.18071): every token carries its sequence's length-normalized ratio
    s_i = exp(mean_t log(pi / pi_old)) as the value sg[s_i] * pi_t / sg[pi_t], so the gradient is
    s_i * grad log pi_t and clipping acts on whole sequences."""
    token_sums = all_reduce_sum(((logprobs - old_logprobs).detach() * mask).sum(-1), group)
    per_seq = clamp_log_ratio(token_sums / stats.tokens_per_seq.clamp(min=1))
    return per_seq[:, None] + logprobs - logprobs.detach()


LOG_RATIOS: dict[str, LogRatio] = {"token": token_log_ratio, "sequence": sequence_log_ratio}


@dataclass(frozen=True)
class Surrogate:
    losses: torch.Tensor  # per token
    clipped_low: torch.Tensor  # A < 0 and ratio < 1 - eps_low: no gradient
    clipped_high: torch.Tensor  # A > 0 and ratio > 1 + eps_high: no gradient
    dual_clipped: torch.Tensor  # A < 0 and ratio > c: the loss is capped at -c * A


def clipped_surrogate(ratio: torch.Tensor, advantages: torch.Tensor, eps_low: float, eps_high: float,
                      dual_clip_c: float | None) -> Surrogate:
    """-min(ratio * A, clip(ratio, 1 - eps_low, 1 + eps_high) * A), and with dual clip (Ye et al. 2020)
    the loss of a negative-advantage token is at most -c * A, however large its ratio."""
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - eps_low, 1.0 + eps_high)
    losses = torch.maximum(unclipped, clipped)
    negative = advantages < 0
    if dual_clip_c is None:
        dual_clipped = torch.zeros_like(negative)
    else:
        cap = -advantages * dual_clip_c
        dual_clipped = negative & (ratio > dual_clip_c)
        losses = torch.where(negative, torch.minimum(losses, cap), losses)
    return Surrogate(losses=losses,
                     clipped_low=negative & (ratio < 1.0 - eps_low),
                     clipped_high=(advantages > 0) & (ratio > 1.0 + eps_high),
                     dual_clipped=dual_clipped)


def policy_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor,
                loss_mask: torch.Tensor, *, config: AlgoConfig, rollout_logprobs: torch.Tensor | None = None,
                ref_logprobs: torch.Tensor | None = None, entropy: torch.Tensor | None = None,
                cp_group: dist.ProcessGroup | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Loss to minimize (scalar) and metrics, for the settings in `config` (see AlgoConfig)."""
    if logprobs.shape != old_logprobs.shape or logprobs.shape != loss_mask.shape:
        raise ValueError(f"policy_loss: logprobs {tuple(logprobs.shape)}, old_logprobs {tuple(old_logprobs.shape)} "
                         f"and loss_mask {tuple(loss_mask.shape)} must have the same [B, T] shape")
    mask = loss_mask.to(logprobs.dtype)
    advantages = (advantages[:, None] if advantages.dim() == 1 else advantages).to(logprobs.dtype)
    old_logprobs = old_logprobs.detach()
    stats = SequenceStats.of(mask, cp_group, config.loss_norm_length)
    aggregate = AGGREGATIONS[config.loss_agg_mode]

    ratio = LOG_RATIOS[config.ratio_level](logprobs, old_logprobs, mask, stats, cp_group).exp()
    surrogate = clipped_surrogate(ratio, advantages.expand_as(ratio), config.eps_clip_low, config.eps_clip_high,
                                  config.dual_clip_c)
    weights = rollout_weights(old_logprobs, rollout_logprobs, config)
    token_losses = surrogate.losses if weights is None else surrogate.losses * weights
    pg_loss = aggregate(token_losses, mask, stats)
    loss = pg_loss
    metrics: dict[str, torch.Tensor] = {"pg_loss": pg_loss.detach()}

    if config.kl_coef > 0.0:
        if ref_logprobs is None:
            raise ValueError(f"algo.kl_coef={config.kl_coef} needs ref_logprobs from the reference model; "
                             "pass them or set algo.kl_coef: 0")
        kl_loss = aggregate(kl_penalty(logprobs, ref_logprobs.detach(), config.kl_estimator), mask, stats)
        loss = loss + config.kl_coef * kl_loss
        metrics["kl_loss"] = kl_loss.detach()
    if config.entropy_coef > 0.0:
        if entropy is None:
            raise ValueError(f"algo.entropy_coef={config.entropy_coef} needs the per-token entropy; pass entropy "
                             "(from vocab_parallel_logprobs_and_entropy) or set algo.entropy_coef: 0")
        entropy_loss = aggregate(entropy, mask, stats)
        loss = loss - config.entropy_coef * entropy_loss
        metrics["entropy_loss"] = entropy_loss.detach()

    metrics["loss"] = loss.detach()
    metrics.update(_diagnostics(logprobs, old_logprobs, ratio, surrogate, mask, weights, rollout_logprobs, entropy))
    return loss, metrics


@torch.no_grad()
def _diagnostics(logprobs, old_logprobs, ratio, surrogate, mask, weights, rollout_logprobs,
                 entropy) -> dict[str, torch.Tensor]:
    valid = mask > 0
    count = mask.sum().clamp(min=1)

    def mean(x: torch.Tensor) -> torch.Tensor:
        return (x.to(mask.dtype) * mask).sum() / count

    def extreme(reduce, fill: float) -> torch.Tensor:
        """min or max over the valid tokens, 1.0 when there are none (no host sync: no boolean indexing)"""
        value = reduce(torch.where(valid, ratio.detach(), torch.full_like(ratio, fill)))
        return torch.where(valid.any(), value, torch.ones_like(value))

    metrics = {
        "clipfrac_low": mean(surrogate.clipped_low),
        "clipfrac_high": mean(surrogate.clipped_high),
        "dual_clipfrac": mean(surrogate.dual_clipped),
        "approx_kl": mean(k3(logprobs.detach(), old_logprobs)),
        "ratio_mean": mean(ratio.detach()),
        "ratio_min": extreme(torch.min, float("inf")),
        "ratio_max": extreme(torch.max, float("-inf")),
        "masked_fraction": torch.zeros_like(count) if weights is None else mean(weights == 0),
    }
    if weights is not None:
        metrics["rollout_weight_mean"] = mean(weights)
    if rollout_logprobs is not None:
        metrics["train_rollout_logprob_diff"] = mean((old_logprobs - rollout_logprobs).abs())
    if entropy is not None:
        metrics["entropy"] = mean(entropy.detach())
    return metrics
