"""What a micro-batch's loss is, and how much of the optimizer step's loss it carries.

An objective turns the response tokens' log-probs (and entropy) into a loss over its micro-batch, in the
aggregation its config names. Gradient accumulation must give the loss of the whole mini-batch, so each
micro-batch's loss is weighted by its share of the mini-batch's units (tokens for token-mean, sequences
for the per-sequence modes): sum_mb loss_mb * units_mb / units_total. Megatron's schedule divides each
micro-batch loss by their number and DDP averages gradients over data-parallel ranks, so the weight also
carries num_micro_batches * dp to undo both. Under context parallelism each CP rank's loss is its part of
the micro-batch's (the schedule multiplies it by the CP size, which DDP's average over DP x CP undoes).
"""
from __future__ import annotations

import dataclasses

import torch
import torch.distributed as dist

from megatron_mc.algo import AlgoConfig, policy_loss
from megatron_mc.algo.context_parallel import all_reduce_sum
from megatron_mc.trainer.batch import TrainBatch
from megatron_mc.trainer.microbatches import MicroBatch

# Which count each aggregation mode averages over (megatron_mc.algo.aggregation.AGGREGATIONS).
AGGREGATION_UNITS = {
    "token-mean": "tokens",
    "seq-mean-token-sum": "sequences",
    "seq-mean-token-mean": "sequences",
    "seq-mean-token-sum-norm": "sequences",
}


def units(kind: str, response_lengths: list[int]) -> int:
    return sum(response_lengths) if kind == "tokens" else len(response_lengths)


class PolicyGradient:
    """The clipped policy-gradient loss of megatron_mc.algo.policy_loss, configured by AlgoConfig."""

    def __init__(self, config: AlgoConfig, batch: TrainBatch):
        if config.loss_norm_length is None and config.loss_agg_mode == "seq-mean-token-sum-norm":
            # a constant over the whole batch, not each micro-batch's padded width
            config = dataclasses.replace(config, loss_norm_length=max(len(r) for r in batch.response_ids))
        self.config = config
        self.unit = AGGREGATION_UNITS[config.loss_agg_mode]

    def loss(self, logprobs: torch.Tensor, entropy: torch.Tensor, mb: MicroBatch,
             cp_group: dist.ProcessGroup | None = None) -> tuple[torch.Tensor, dict]:
        if mb.old_logprobs is None:
            raise ValueError("policy-gradient training needs old_logprobs; TrainGroup.train computes them "
                             "when the batch has none")
        return policy_loss(logprobs, mb.old_logprobs, mb.advantages, mb.response_mask, config=self.config,
                           rollout_logprobs=mb.rollout_logprobs, ref_logprobs=mb.ref_logprobs, entropy=entropy,
                           cp_group=cp_group)


class SupervisedCrossEntropy:
    """Token-mean negative log-likelihood of the response tokens."""

    unit = "tokens"

    def loss(self, logprobs: torch.Tensor, entropy: torch.Tensor, mb: MicroBatch,
             cp_group: dist.ProcessGroup | None = None) -> tuple[torch.Tensor, dict]:
        mask = mb.response_mask.to(logprobs.dtype)
        # under context parallelism: this part's sum over the whole micro-batch's count
        loss = -(logprobs * mask).sum() / all_reduce_sum(mask.sum(), cp_group).clamp(min=1)
        metrics = {"loss": loss.detach()}
        if entropy is not None:
            metrics["entropy"] = (entropy.detach() * mask).sum() / mask.sum().clamp(min=1)
        return loss, metrics
