"""Micro-batch layouts: padded rows and packed segments mark exactly the response tokens, their loss view
picks each sequence's own positions out of the model's output, context-parallel parts hold every
position once and merge back; TrainBatch rejects inconsistent rows."""
from __future__ import annotations

import dataclasses

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from megatron_mc.models.packed_segments import segment_boundaries
from megatron_mc.trainer.batch import TrainBatch
from megatron_mc.trainer.microbatches import make_micro_batch, padding_micro_batch, shard_indices


def _batch() -> TrainBatch:
    return TrainBatch([[1, 2, 3], [4]], [[5, 6], [7, 8, 9]], [1.0, -1.0], [[-0.5, -0.6], [-1.0, -1.1, -1.2]], 1.0)


@given(st.integers(0, 50), st.integers(1, 8))
def test_shards_cover_every_sequence_once_in_order(n, dp):
    shards = [shard_indices(n, rank, dp) for rank in range(dp)]
    assert [i for shard in shards for i in shard] == list(range(n))
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


def test_padded_rows_mark_the_positions_that_predict_response_tokens():
    mb = make_micro_batch(_batch(), row_multiple=4)
    assert mb.tokens.tolist() == [[1, 2, 3, 5, 6, 0, 0, 0], [4, 7, 8, 9, 0, 0, 0, 0]]
    assert mb.segments is None and mb.positions[1].tolist() == list(range(8))
    assert mb.targets.reshape(-1)[mb.gather_index[mb.response_mask]].tolist() == [5, 6, 7, 8, 9]
    values = mb.response_values(mb.rollout_logprobs)
    assert values[0] == pytest.approx([-0.5, -0.6]) and values[1] == pytest.approx([-1.0, -1.1, -1.2])
    assert mb.num_tokens == 5 and mb.num_sequences == 2


def test_packed_segments_lie_back_to_back_with_positions_restarting():
    mb = make_micro_batch(_batch(), packed=True, segment_multiple=2, row_multiple=8, indices=[7, 3])
    # segments of 6 and 4 tokens (lengths 5 and 4 rounded to 2), then a filler of 6 up to 16
    assert mb.tokens.tolist() == [[1, 2, 3, 5, 6, 0, 4, 7, 8, 9, 0, 0, 0, 0, 0, 0]]
    assert mb.positions.tolist() == [[0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 0, 1, 2, 3, 4, 5]]
    assert mb.segments.bounds == [0, 6, 10, 16]
    assert mb.segments.longest == 6
    # a sequence's last token predicts nothing: nothing crosses into the next segment
    assert mb.targets.tolist() == [[2, 3, 5, 6, 0, 0, 7, 8, 9, 0, 0, 0, 0, 0, 0, 0]]
    assert mb.targets.reshape(-1)[mb.gather_index[mb.response_mask]].tolist() == [5, 6, 7, 8, 9]
    assert mb.indices == [7, 3]
    params = mb.segments.packed_seq_params(torch.device("cpu"))
    assert params.qkv_format == "thd" and params.cu_seqlens_q_padded.tolist() == [0, 6, 10, 16]
    assert params.cu_seqlens_q.tolist() == [0, 6, 10, 16]  # each padded segment is one sequence (see Segments)
    assert params.cu_seqlens_q.dtype == torch.int32 and params.max_seqlen_q == 6
    assert segment_boundaries(params) == (0, 6, 10, 16)  # from the host copy: no device read per layer


def test_the_loss_view_is_the_same_for_padded_and_packed_input():
    padded = make_micro_batch(_batch(), row_multiple=4)
    packed = make_micro_batch(_batch(), packed=True)
    # a per-position value that names the token it predicts
    for mb in (padded, packed):
        view = mb.per_sequence(mb.targets.float())
        assert mb.response_values(view) == [[5.0, 6.0], [7.0, 8.0, 9.0]]
        assert view[~mb.response_mask].abs().sum() == 0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 9), st.integers(1, 9)), min_size=1, max_size=5), st.sampled_from([2, 3]),
       st.booleans())
def test_context_parallel_parts_hold_every_position_once_and_merge_back(shape, cp, packed):
    gen = torch.Generator().manual_seed(len(shape))
    prompts = [torch.randint(1, 50, (p,), generator=gen).tolist() for p, _ in shape]
    responses = [torch.randint(1, 50, (r,), generator=gen).tolist() for _, r in shape]
    rollout = [torch.rand(r, generator=gen).tolist() for _, r in shape]
    batch = TrainBatch(prompts, responses, [1.0] * len(shape), rollout, 1.0)
    mb = make_micro_batch(batch, packed=packed, segment_multiple=2 * cp, row_multiple=2 * cp * 2)
    parts = [mb.context_part(cp, rank) for rank in range(cp)]
    assert all(p.tokens.shape == (mb.tokens.shape[0], mb.tokens.shape[1] // cp) for p in parts)
    # the input positions of the parts are a partition of the whole row, tokens and targets with them
    for rank, part in enumerate(parts):
        global_of = _global_positions(mb, cp, rank)
        assert torch.equal(part.tokens.reshape(-1), mb.tokens.reshape(-1)[global_of])
        assert torch.equal(part.targets.reshape(-1), mb.targets.reshape(-1)[global_of])
    assert sum(p.num_tokens for p in parts) == mb.num_tokens
    # each part's loss view picks its own positions' values; merged, they are the whole micro-batch's
    merged = mb.merge_context_parts([p.per_sequence(p.targets.float()) for p in parts])
    assert torch.equal(merged, mb.per_sequence(mb.targets.float()))
    assert torch.equal(mb.merge_context_parts([p.rollout_logprobs for p in parts]), mb.rollout_logprobs)


def _global_positions(mb, cp, rank) -> torch.Tensor:
    """Where each of the part's input positions sits in the whole row (from the zig-zag definition)."""
    from megatron_mc.algo.context_parallel import zigzag_indices

    if mb.segments is not None:
        bounds = mb.segments.bounds
        segments = list(zip(bounds, bounds[1:]))
    else:
        rows, width = mb.tokens.shape
        segments = [(r * width, (r + 1) * width) for r in range(rows)]
    return torch.cat([a + zigzag_indices(b - a, cp, rank) for a, b in segments])


def test_train_batch_rejects_rows_that_do_not_line_up():
    with pytest.raises(ValueError, match="rollout_logprobs\\[0\\]: 1 values for 2 response tokens"):
        TrainBatch([[1]], [[2, 3]], [1.0], [[-0.1]], 1.0)
    with pytest.raises(ValueError, match="2 advantages"):
        TrainBatch([[1]], [[2]], [1.0, 2.0], None, 1.0)
    with pytest.raises(ValueError, match="response_ids\\[0\\] is empty"):
        TrainBatch.for_sft([[1]], [[]])


@pytest.mark.parametrize("packed", [False, True])
def test_a_micro_batch_moves_every_tensor_to_the_device(packed):
    batch = TrainBatch([[1, 2]], [[3, 4]], [1.0], [[-0.5, -0.6]], 1.0)
    batch.old_logprobs, batch.ref_logprobs = [[-0.4, -0.7]], [[-0.3, -0.2]]
    moved = make_micro_batch(batch, packed=packed).context_part(1, 0).to(torch.device("meta"))
    tensors = {f.name: getattr(moved, f.name) for f in dataclasses.fields(moved)
               if isinstance(getattr(moved, f.name), torch.Tensor)}
    assert len(tensors) == 9 and all(t.device.type == "meta" for t in tensors.values()), tensors.keys()


def test_padding_micro_batches_carry_no_sequence_and_split_over_context_parallel_ranks():
    pad = padding_micro_batch(row_multiple=4)
    assert pad.padding and pad.num_tokens == 0 and pad.response_lengths == [] and pad.num_sequences == 0
    assert pad.tokens.shape == (1, 4)
    assert [p.tokens.shape[1] for p in (pad.context_part(2, 0), pad.context_part(2, 1))] == [2, 2]


def test_megatrons_dot_product_attention_with_packed_sequences_is_refused_by_key():
    from scenarios import run_config

    from megatron_mc.trainer.worker import TrainWorker

    cfg = run_config()
    cfg.model.local_attention = "dot_product"
    with pytest.raises(ValueError, match="model.local_attention: dot_product .* train.pack_sequences: false"):
        TrainWorker(cfg, "never read: refused before anything starts")
