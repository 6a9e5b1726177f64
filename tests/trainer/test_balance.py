"""Balanced micro-batch plans: every sequence once, the same count on every data-parallel rank (a multiple of
count_multiple), the budget respected, near-equal rank loads, the fewest micro-batches; Karmarkar-Karp."""
from __future__ import annotations

import itertools
import math
import random

import pytest

from megatron_mc.trainer.balance import karmarkar_karp, layout_cost, plan_micro_batches


def long_tailed_lengths(rng: random.Random, n: int) -> list[int]:
    """Prompt + response lengths like code RL's: log-normal responses, a fifth truncated at 16384."""
    lengths = []
    for _ in range(n):
        prompt = min(4000, int(rng.lognormvariate(math.log(700), 0.5)))
        response = 16384 if rng.random() < 0.2 else min(16384, int(rng.lognormvariate(math.log(2500), 0.9)))
        lengths.append(prompt + max(response, 1))
    return lengths


def cost(lengths, group, packed, segment_multiple, row_multiple):
    def up(n, m):
        return -(-n // m) * m

    if packed:
        return up(sum(up(lengths[i], segment_multiple) for i in group), row_multiple)
    return len(group) * up(max(lengths[i] for i in group), row_multiple)


def fewest_padded(widths: list[int], budget: int) -> int:
    """Fewest right-padded groups that fit: longest first, each group as large as its longest allows."""
    widths, count = sorted(widths, reverse=True), 0
    while widths:
        widths = widths[max(1, budget // widths[0]):]
        count += 1
    return count


def check_plan(lengths, plan, dp, budget, packed, segment_multiple, row_multiple, count_multiple):
    where = f"dp={dp} budget={budget} packed={packed} multiples={segment_multiple},{row_multiple},{count_multiple}"
    assert len(plan) == dp, where
    assert sorted(i for rank in plan for group in rank for i in group) == list(range(len(lengths))), where
    count = len(plan[0])
    assert count >= 1 and count % count_multiple == 0 and all(len(rank) == count for rank in plan), where
    for rank in plan:
        sequences = sum(map(len, rank))
        for group in rank:
            assert group or sequences < count, f"{where}: an empty micro-batch on a rank with {sequences} sequences"
            if len(group) > 1:
                assert cost(lengths, group, packed, segment_multiple, row_multiple) <= budget, where
    if not packed:  # the fewest micro-batches for this rank assignment
        widths = [[-(-lengths[i] // row_multiple) * row_multiple for group in rank for i in group] for rank in plan]
        needed = max(max(fewest_padded(w, budget) for w in widths), 1)
        assert count == -(-needed // count_multiple) * count_multiple, where


def test_plans_keep_the_contract_over_many_layouts():
    rng = random.Random(11)
    layouts = list(itertools.product([1, 2, 3, 8], [3000, 20480, 40000], [False, True], [1, 4], [1, 8, 16], [1, 2, 4]))
    for dp, budget, packed, segment_multiple, row_multiple, count_multiple in layouts:
        lengths = long_tailed_lengths(rng, rng.randint(0, 100))
        plan = plan_micro_batches(lengths, dp, budget, packed=packed, segment_multiple=segment_multiple,
                                  row_multiple=row_multiple, count_multiple=count_multiple)
        check_plan(lengths, plan, dp, budget, packed, segment_multiple, row_multiple, count_multiple)


def test_plans_are_deterministic():
    lengths = long_tailed_lengths(random.Random(3), 200)
    for packed in (False, True):
        first = plan_micro_batches(lengths, 8, 20480, packed=packed, segment_multiple=4, row_multiple=8)
        assert plan_micro_batches(tuple(lengths), 8, 20480, packed=packed, segment_multiple=4, row_multiple=8) == first


def test_packed_plan_balances_ranks_and_wastes_almost_nothing():
    lengths = long_tailed_lengths(random.Random(5), 512)
    plan = plan_micro_batches(lengths, 8, 20480, packed=True, segment_multiple=4, row_multiple=8)
    figures = layout_cost(lengths, plan, packed=True, segment_multiple=4, row_multiple=8)
    assert figures["waste"] <= 1.01 and figures["imbalance"] <= 1.02
    fewest = max(math.ceil(load / 20480) for load in figures["computed_per_rank"])
    assert figures["micro_batches"] <= fewest + 2


def test_padded_plan_cuts_the_cheapest_groups():
    """The contiguous cuts of sorted lengths cost no more than the best of all set partitions."""
    rng = random.Random(7)
    for _ in range(30):
        lengths = [rng.randint(1, 60) for _ in range(rng.randint(1, 7))]
        budget = rng.randint(60, 200)
        (rank,) = plan_micro_batches(lengths, 1, budget, packed=False)
        planned = sum(cost(lengths, g, False, 1, 1) for g in rank if g)
        best = min(sum(cost(lengths, g, False, 1, 1) for g in groups)
                   for groups in set_partitions(list(range(len(lengths))), len(rank))
                   if all(len(g) == 1 or cost(lengths, g, False, 1, 1) <= budget for g in groups))
        assert planned == best, (lengths, budget, rank)


def set_partitions(items, parts):
    if not items:
        if parts == 0:
            yield []
        return
    first, rest = items[0], items[1:]
    for partition in set_partitions(rest, parts - 1):
        yield [[first]] + partition
    for partition in set_partitions(rest, parts):
        for i in range(len(partition)):
            yield partition[:i] + [[first] + partition[i]] + partition[i + 1:]


def test_equal_lengths_give_the_fewest_full_micro_batches():
    plan = plan_micro_batches([1000] * 16, 2, 4000, packed=True)
    assert [len(rank) for rank in plan] == [2, 2] and all(len(g) == 4 for rank in plan for g in rank)


def test_a_rank_filled_close_to_the_budget_still_gets_the_fewest_micro_batches():
    """Karmarkar-Karp's balanced 4-way split overflows ([3, 6, 2] = 11); first-fit decreasing fits 4."""
    lengths = [10, 4, 3, 6, 2, 10, 5]
    assert any(sum(lengths[i] for i in part) > 10 for part in karmarkar_karp(lengths, 4))
    (rank,) = plan_micro_batches(lengths, 1, 10, packed=True)
    assert len(rank) == 4 and all(sum(lengths[i] for i in group) <= 10 for group in rank)


def test_lone_oversized_sequences_go_alone():
    plan = plan_micro_batches([5000, 100, 100, 6000], 1, 1000, packed=True)
    assert plan == [[[3], [0], [1, 2]]]


def test_empty_batch_and_fewer_sequences_than_ranks():
    assert plan_micro_batches([], 3, 100, packed=True, count_multiple=2) == [[[], []]] * 3
    plan = plan_micro_batches([5, 3], 4, 10, packed=False)
    assert sorted(plan) == [[[]], [[]], [[0]], [[1]]]


def test_karmarkar_karp_beats_greedy_on_the_textbook_instance():
    costs = [8, 7, 6, 5, 4]  # greedy (largest first to the lightest part) ends at 17 / 13
    parts = karmarkar_karp(costs, 2)
    assert sorted(sum(costs[i] for i in part) for part in parts) == [14, 16]
    assert sorted(i for part in parts for i in part) == list(range(5))


def test_karmarkar_karp_with_more_parts_than_costs():
    parts = karmarkar_karp([3, 1], 4)
    assert sorted(parts) == [[], [], [0], [1]]
    assert karmarkar_karp([], 2) == [[], []]


def test_layout_cost_counts_padding_and_stand_ins():
    lengths = [3, 5, 10]
    packed = layout_cost(lengths, [[[0, 1]], [[2]], [[]]], packed=True, segment_multiple=4, row_multiple=8)
    assert packed["computed_per_rank"] == [16, 16, 8] and packed["useful"] == 18 and packed["imbalance"] == 2
    padded = layout_cost(lengths, [[[0, 1], [2]]], packed=False, row_multiple=4)
    assert padded["computed"] == 2 * 8 + 12 and padded["waste"] == pytest.approx(28 / 18)
    assert padded["micro_batches"] == 2


@pytest.mark.parametrize("kwargs, key", [
    (dict(dp_size=0), "dp_size"), (dict(token_budget=0), "token_budget"), (dict(segment_multiple=0), "segment"),
    (dict(row_multiple=0), "row_multiple"), (dict(count_multiple=0), "count_multiple"),
    (dict(lengths=[3, 0]), "length")])
def test_bad_arguments_are_named(kwargs, key):
    arguments = dict(lengths=[3, 4], dp_size=2, token_budget=10, packed=True) | kwargs
    with pytest.raises(ValueError, match=key):
        plan_micro_batches(**arguments)
    with pytest.raises(ValueError, match="parts"):
        karmarkar_karp([1], 0)
