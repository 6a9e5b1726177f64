"""How per-token losses [B, T] become one scalar: the loss aggregation modes, chosen by name in
`AGGREGATIONS`.

With context parallelism each rank holds part of every sequence; `SequenceStats` carries the counts of
the whole sequences (summed over the CP group), so that the losses of the ranks add up to the loss of
the unsplit batch. Only sequences with at least one valid token count as sequences.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist

from megatron_mc.algo.context_parallel import all_reduce_sum


@dataclass(frozen=True)
class SequenceStats:
    tokens_per_seq: torch.Tensor  # [B] valid tokens of each whole sequence
    total_tokens: torch.Tensor  # scalar, >= 1
    num_seqs: torch.Tensor  # scalar, sequences with a valid token, >= 1
    norm_length: float  # seq-mean-token-sum-norm's per-sequence constant

    @staticmethod
    def of(mask: torch.Tensor, group: dist.ProcessGroup | None, norm_length: int | None) -> "SequenceStats":
        tokens = all_reduce_sum(mask.sum(-1), group)
        return SequenceStats(
            tokens_per_seq=tokens,
            total_tokens=tokens.sum().clamp(min=1),
            num_seqs=(tokens > 0).sum().clamp(min=1).to(mask.dtype),
            # the padded length of the whole sequence: every CP rank holds an equal share of it
            norm_length=float(norm_length or mask.shape[-1] * _group_size(group)),
        )


Aggregation = Callable[[torch.Tensor, torch.Tensor, SequenceStats], torch.Tensor]


def token_mean(losses: torch.Tensor, mask: torch.Tensor, stats: SequenceStats) -> torch.Tensor:
    """Every valid token weighs the same (DAPO): long responses weigh more."""
    return (losses * mask).sum() / stats.total_tokens


def seq_mean_token_sum(losses: torch.Tensor, mask: torch.Tensor, stats: SequenceStats) -> torch.Tensor:
    return (losses * mask).sum() / stats.num_seqs


def seq_mean_token_mean(losses: torch.Tensor, mask: torch.Tensor, stats: SequenceStats) -> torch.Tensor:
    """Every sequence weighs the same, its tokens share its weight (the original GRPO)."""
    per_seq = (losses * mask).sum(-1) / stats.tokens_per_seq.clamp(min=1)
    return per_seq.sum() / stats.num_seqs


def seq_mean_token_sum_norm(losses: torch.Tensor, mask: torch.Tensor, stats: SequenceStats) -> torch.Tensor:
    """Token sums over a constant length (Dr. GRPO): no length bias from the per-sequence mean."""
    return (losses * mask).sum() / (stats.num_seqs * stats.norm_length)


AGGREGATIONS: dict[str, Aggregation] = {
    "token-mean": token_mean,
    "seq-mean-token-sum": seq_mean_token_sum,
    "seq-mean-token-mean": seq_mean_token_mean,
    "seq-mean-token-sum-norm": seq_mean_token_sum_norm,
}


def _group_size(group: dist.ProcessGroup | None) -> int:
    return 1 if group is None else dist.get_world_size(group)
