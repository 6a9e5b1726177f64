"""How a batch is cut for the ranks: contiguous data-parallel shards, then micro-batches packed up to a
token budget, each a right-padded [n, L] tensor with the response tokens marked, and under context
parallelism each CP rank's zig-zag part of a micro-batch.

Micro-batches are padded, not packed back to back: Megatron-Core's local layers have no variable-length
attention, and right padding needs no mask under causal attention. The budget counts padded tokens
(n * L), which is what memory pays for.

Every data-parallel rank must run the same number of micro-batches: expert-parallel all-to-alls span the
data-parallel replicas and pair up one micro-batch at a time, so a rank that runs one fewer forward leaves
the others waiting forever. Ranks that packed fewer append padding micro-batches (one short sequence
that carries no response tokens, no loss weight and no results).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import torch

from megatron_mc.algo.context_parallel import zigzag_split
from megatron_mc.trainer.batch import TrainBatch


def shard_indices(n: int, dp_rank: int, dp_size: int) -> list[int]:
    """This data-parallel rank's contiguous share of n sequences (the first n % dp ranks get one more)."""
    base, extra = divmod(n, dp_size)
    start = dp_rank * base + min(dp_rank, extra)
    return list(range(start, start + base + (dp_rank < extra)))


def pack(lengths: list[int], token_budget: int, multiple_of: int = 1) -> list[list[int]]:
    """Consecutive index groups whose padded size (count * longest, rounded up to multiple_of) fits the
    budget; a sequence longer than the budget goes alone."""
    groups: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i, length in enumerate(lengths):
        padded = _round_up(max(longest, length), multiple_of)
        if current and (len(current) + 1) * padded > token_budget:
            groups.append(current)
            current, longest = [], 0
        current.append(i)
        longest = max(longest, length)
    if current:
        groups.append(current)
    return groups


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def schedule_length(most_packed: int, pp: int, interleaved: bool) -> int:
    """How many micro-batches every data-parallel rank runs, given the most that any rank packed: at
    least one (a rank with an empty shard still joins the collectives), and under the interleaved
    pipeline schedule a multiple of pp (Megatron-Core's schedules.py,
    forward_backward_pipelining_with_interleaving, raises unless the count is a multiple of
    microbatch_group_size_per_vp_stage, which defaults to pp)."""
    count = max(most_packed, 1)
    return _round_up(count, pp) if interleaved else count


@dataclass
class MicroBatch:
    """Per-position tensors are [n, L] in next-token layout: position t holds what is known about
    predicting token t + 1 (the last position predicts nothing)."""

    tokens: torch.Tensor  # [n, L] prompt + response, right-padded
    positions: torch.Tensor  # [n, L] position ids of the tokens
    targets: torch.Tensor  # [n, L] token t + 1 at position t, 0 at the last position
    response_mask: torch.Tensor  # [n, L] bool: position t predicts token t + 1, a response token
    advantages: torch.Tensor  # [n]
    old_logprobs: Optional[torch.Tensor]  # [n, L], zeros off the response
    rollout_logprobs: Optional[torch.Tensor]
    ref_logprobs: Optional[torch.Tensor]
    response_lengths: list[int]  # of the whole sequences, also in a context-parallel part
    padding: bool = False  # a stand-in that only keeps this rank's schedule as long as the others'

    @property
    def num_tokens(self) -> int:
        return int(self.response_mask.sum())

    @property
    def num_sequences(self) -> int:
        return int(self.tokens.shape[0])

    def response_values(self, per_position: torch.Tensor) -> list[list[float]]:
        """Per-position values [n, L] back to one list per response."""
        return [row[mask].tolist() for row, mask in zip(per_position.detach().cpu(), self.response_mask)]

    def to(self, device: torch.device) -> "MicroBatch":
        """Every tensor on `device` (the loss mixes them with the logits there)."""
        def moved(t):
            return None if t is None else t.to(device)

        return replace(self, tokens=moved(self.tokens), positions=moved(self.positions), targets=moved(self.targets),
                       response_mask=moved(self.response_mask), advantages=moved(self.advantages),
                       old_logprobs=moved(self.old_logprobs), rollout_logprobs=moved(self.rollout_logprobs),
                       ref_logprobs=moved(self.ref_logprobs))

    def context_part(self, cp_size: int, cp_rank: int) -> "MicroBatch":
        """What context-parallel rank `cp_rank` holds: its zig-zag share of every per-position tensor."""
        def part(t):
            return None if t is None else zigzag_split(t, cp_size, cp_rank)

        return replace(self, tokens=part(self.tokens), positions=part(self.positions), targets=part(self.targets),
                       response_mask=part(self.response_mask), old_logprobs=part(self.old_logprobs),
                       rollout_logprobs=part(self.rollout_logprobs), ref_logprobs=part(self.ref_logprobs))


def make_micro_batch(batch: TrainBatch, pad_id: int = 0, multiple_of: int = 1) -> MicroBatch:
    lengths = [len(p) + len(r) for p, r in zip(batch.prompt_ids, batch.response_ids)]
    width = _round_up(max(lengths), multiple_of)
    tokens = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.bool)
    for i, (prompt, response) in enumerate(zip(batch.prompt_ids, batch.response_ids)):
        tokens[i, : lengths[i]] = torch.tensor(prompt + response)
        mask[i, len(prompt) - 1 : lengths[i] - 1] = True
    targets = torch.zeros_like(tokens)
    targets[:, :-1] = tokens[:, 1:]

    def per_position(rows):
        if rows is None:
            return None
        values = torch.zeros(mask.shape, dtype=torch.float32)
        for i, row in enumerate(rows):
            values[i, mask[i]] = torch.tensor(row, dtype=torch.float32)
        return values

    return MicroBatch(tokens=tokens, positions=torch.arange(width).expand_as(tokens), targets=targets,
                      response_mask=mask, advantages=torch.tensor(batch.advantages, dtype=torch.float32),
                      old_logprobs=per_position(batch.old_logprobs),
                      rollout_logprobs=per_position(batch.rollout_logprobs),
                      ref_logprobs=per_position(batch.ref_logprobs),
                      response_lengths=[len(r) for r in batch.response_ids])


def micro_batches(batch: TrainBatch, token_budget: int, pad_id: int = 0, multiple_of: int = 1) -> list[MicroBatch]:
    lengths = [len(p) + len(r) for p, r in zip(batch.prompt_ids, batch.response_ids)]
    return [make_micro_batch(batch.select(group), pad_id, multiple_of)
            for group in pack(lengths, token_budget, multiple_of)]


def padding_micro_batch(pad_id: int = 0, multiple_of: int = 1) -> MicroBatch:
    """One sequence of `multiple_of` padding tokens with no response token: it runs forward and backward
    like any micro-batch (so every collective inside the model is matched) and contributes nothing."""
    tokens = torch.full((1, multiple_of), pad_id, dtype=torch.long)
    return MicroBatch(tokens=tokens, positions=torch.arange(multiple_of).expand_as(tokens),
                      targets=torch.zeros_like(tokens), response_mask=torch.zeros(tokens.shape, dtype=torch.bool),
                      advantages=torch.zeros(1), old_logprobs=None, rollout_logprobs=None, ref_logprobs=None,
                      response_lengths=[], padding=True)


def padded_to(mbs: list[MicroBatch], count: int, pad_id: int = 0, multiple_of: int = 1) -> list[MicroBatch]:
    """`mbs` followed by padding micro-batches up to `count`."""
    if len(mbs) > count:
        raise ValueError(f"{len(mbs)} micro-batches cannot be padded down to {count}")
    return mbs + [padding_micro_batch(pad_id, multiple_of) for _ in range(count - len(mbs))]
