"""Batch cutting: data-parallel shards cover every sequence once; micro-batches respect the padded-token
budget and mark exactly the response tokens; TrainBatch rejects inconsistent rows."""
from __future__ import annotations

import dataclasses

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from megatron_mc.trainer.batch import TrainBatch
from megatron_mc.trainer.microbatches import make_micro_batch, pack, padded_to, schedule_length, shard_indices


@given(st.integers(0, 50), st.integers(1, 8))
def test_shards_cover_every_sequence_once_in_order(n, dp):
    shards = [shard_indices(n, rank, dp) for rank in range(dp)]
    assert [i for shard in shards for i in shard] == list(range(n))
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


@given(st.lists(st.integers(1, 40), min_size=1, max_size=30), st.integers(1, 200), st.sampled_from([1, 2, 4]))
def test_packs_fit_the_budget_unless_a_sequence_alone_exceeds_it(lengths, budget, multiple):
    groups = pack(lengths, budget, multiple)
    assert [i for g in groups for i in g] == list(range(len(lengths)))
    for group in groups:
        padded = -(-max(lengths[i] for i in group) // multiple) * multiple
        assert len(group) * padded <= budget or len(group) == 1


def test_micro_batch_marks_the_positions_that_predict_response_tokens():
    batch = TrainBatch([[1, 2, 3], [4]], [[5, 6], [7, 8, 9]], [1.0, -1.0], [[-0.5, -0.6], [-1.0, -1.1, -1.2]], 1.0)
    mb = make_micro_batch(batch, multiple_of=4)
    assert mb.tokens.tolist() == [[1, 2, 3, 5, 6, 0, 0, 0], [4, 7, 8, 9, 0, 0, 0, 0]]
    assert mb.targets[mb.response_mask].tolist() == [5, 6, 7, 8, 9]
    assert mb.tokens[:, 1:][mb.response_mask[:, :-1]].tolist() == [5, 6, 7, 8, 9]
    values = mb.response_values(mb.rollout_logprobs)
    assert values[0] == pytest.approx([-0.5, -0.6]) and values[1] == pytest.approx([-1.0, -1.1, -1.2])
    assert mb.num_tokens == 5


def test_train_batch_rejects_rows_that_do_not_line_up():
    with pytest.raises(ValueError, match="rollout_logprobs\\[0\\]: 1 values for 2 response tokens"):
        TrainBatch([[1]], [[2, 3]], [1.0], [[-0.1]], 1.0)
    with pytest.raises(ValueError, match="2 advantages"):
        TrainBatch([[1]], [[2]], [1.0, 2.0], None, 1.0)
    with pytest.raises(ValueError, match="response_ids\\[0\\] is empty"):
        TrainBatch.for_sft([[1]], [[]])


def test_context_parallel_parts_hold_every_response_position_once():
    batch = TrainBatch([[1, 2, 3], [4]], [[5, 6], [7, 8, 9]], [1.0, -1.0], [[-0.5, -0.6], [-1.0, -1.1, -1.2]], 1.0)
    mb = make_micro_batch(batch, multiple_of=4)
    parts = [mb.context_part(2, rank) for rank in range(2)]
    assert [p.tokens.shape[1] for p in parts] == [4, 4]
    assert parts[0].positions[0].tolist() == [0, 1, 6, 7] and parts[1].positions[0].tolist() == [2, 3, 4, 5]
    for part in parts:  # the targets travel with their positions
        assert torch.equal(part.targets, mb.targets.gather(1, part.positions))
    held = sorted((i, int(pos)) for p in parts for i, row in enumerate(p.positions) for pos in row[p.response_mask[i]])
    assert held == sorted((i, int(t)) for i, row in enumerate(mb.response_mask) for t in row.nonzero()[:, 0])
    assert sum(p.num_tokens for p in parts) == mb.num_tokens == 5
    assert parts[1].response_lengths == mb.response_lengths


def test_a_micro_batch_moves_every_tensor_to_the_device():
    batch = TrainBatch([[1, 2]], [[3, 4]], [1.0], [[-0.5, -0.6]], 1.0)
    batch.old_logprobs, batch.ref_logprobs = [[-0.4, -0.7]], [[-0.3, -0.2]]
    moved = make_micro_batch(batch).context_part(1, 0).to(torch.device("meta"))
    tensors = {f.name: getattr(moved, f.name) for f in dataclasses.fields(moved)
               if isinstance(getattr(moved, f.name), torch.Tensor)}
    assert len(tensors) == 8 and all(t.device.type == "meta" for t in tensors.values()), tensors.keys()


@pytest.mark.parametrize("most, pp, interleaved, expected", [
    (0, 1, False, 1),  # every rank has an empty shard: the schedule still runs once
    (3, 2, False, 3),  # the 1F1B schedule takes any count
    (3, 2, True, 4),  # the interleaved one needs a multiple of pp
    (1, 4, True, 4),
    (4, 2, True, 4),
])
def test_the_schedule_length_is_the_most_packed_and_a_multiple_of_pp_when_interleaved(most, pp, interleaved, expected):
    assert schedule_length(most, pp, interleaved) == expected


def test_padding_micro_batches_carry_no_response_tokens_and_no_units():
    batch = TrainBatch([[1, 2, 3]], [[5, 6]], [1.0], None, 1.0)
    mbs = padded_to([make_micro_batch(batch, multiple_of=4)], 3, multiple_of=4)
    assert [mb.padding for mb in mbs] == [False, True, True]
    pad = mbs[-1]
    assert pad.num_tokens == 0 and pad.response_lengths == [] and pad.num_sequences == 1
    assert pad.tokens.shape == (1, 4)
    assert [p.tokens.shape[1] for p in (pad.context_part(2, 0), pad.context_part(2, 1))] == [2, 2]
    with pytest.raises(ValueError, match="3 micro-batches cannot be padded down to 2"):
        padded_to(mbs, 2)
