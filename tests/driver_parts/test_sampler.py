"""The deterministic problem sampler: epochs are permutations, state restores the exact sequence."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from megatron_mc.data.sampler import ProblemSampler


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 30), batch=st.integers(1, 12), split=st.integers(0, 8), seed=st.integers(0, 99))
def test_restored_state_continues_the_same_sequence(n, batch, split, seed):
    straight = ProblemSampler(n, seed)
    expected = [straight.next_batch(batch) for _ in range(10)]
    first = ProblemSampler(n, seed)
    got = [first.next_batch(batch) for _ in range(split)]
    second = ProblemSampler(n, seed)
    second.load_state_dict(dict(first.state_dict()))
    got += [second.next_batch(batch) for _ in range(10 - split)]
    assert got == expected


def test_each_epoch_is_a_permutation_and_epochs_differ():
    sampler = ProblemSampler(10, seed=3)
    flat = sampler.next_batch(4) + sampler.next_batch(4) + sampler.next_batch(4) + sampler.next_batch(8)
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:]) == list(range(10))
    assert flat[:10] != flat[10:]
    assert sampler.state_dict() == {"num_problems": 10, "seed": 3, "shuffle": True, "epoch": 1, "position": 10}


def test_different_seeds_give_different_orders_and_no_shuffle_is_identity():
    assert ProblemSampler(20, 1).next_batch(20) != ProblemSampler(20, 2).next_batch(20)
    assert ProblemSampler(5, 1, shuffle=False).next_batch(7) == [0, 1, 2, 3, 4, 0, 1]


def test_state_from_another_dataset_is_refused():
    sampler = ProblemSampler(10, seed=3)
    with pytest.raises(ValueError, match="num_problems=11"):
        sampler.load_state_dict(ProblemSampler(11, seed=3).state_dict())
