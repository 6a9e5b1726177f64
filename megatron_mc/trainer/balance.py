"""Micro-batches cut by a token budget and balanced across data-parallel ranks.

Code-RL batches are long-tailed: most responses are far shorter than the maximum, a fifth or so are truncated
at it. Contiguous shards cut in arrival order leave one rank with the long responses and fill right-padded
micro-batches with padding. Here the sequences are first spread over the data-parallel ranks by
Karmarkar-Karp over their token costs, so the ranks' loads are near-equal, then every rank cuts its share into
the same number of micro-batches: expert-parallel all-to-alls pair micro-batches across the data-parallel
replicas one at a time, so a rank that runs one fewer forward leaves the others waiting forever.

The cost model is what memory and compute pay for:
- packed (sequences back to back in one row, THD): a sequence costs its length rounded up to
  `segment_multiple` (context parallelism pads each sequence to a multiple of 2 * cp); a micro-batch costs the
  sum rounded up to `row_multiple` (sequence parallelism and FP8 need the row length to be a multiple);
- padded (right-padded [n, L] rows): a micro-batch costs n * (its longest length rounded up to row_multiple).
"""
from __future__ import annotations

import heapq
from operator import itemgetter
from typing import Sequence


def karmarkar_karp(costs: Sequence[int], parts: int) -> list[list[int]]:
    """`parts` lists of indices into `costs` (each index once) with near-equal cost sums, by the k-way largest
    differencing method: repeatedly merge the two partial partitions with the largest spreads, pairing the
    heaviest part of one with the lightest of the other. Ties break by index, so every rank gets one plan."""
    if parts < 1:
        raise ValueError(f"karmarkar_karp needs parts >= 1, got {parts}")
    if any(c < 0 for c in costs):
        raise ValueError(f"karmarkar_karp needs costs >= 0, got {min(costs)}")
    # A heap entry: (-spread, order, partition); a partition is a list of (sum, indices), heaviest first.
    heap = [(-cost, i, [(cost, [i])] + [(0, [])] * (parts - 1)) for i, cost in enumerate(costs)]
    heapq.heapify(heap)
    order = len(heap)
    while len(heap) > 1:
        _, _, heavy = heapq.heappop(heap)
        _, _, light = heapq.heappop(heap)
        merged = [(a + b, ia + ib) for (a, ia), (b, ib) in zip(heavy, reversed(light))]
        merged.sort(key=itemgetter(0), reverse=True)  # stable: equal sums keep their order
        heapq.heappush(heap, (merged[-1][0] - merged[0][0], order, merged))
        order += 1
    if not heap:
        return [[] for _ in range(parts)]
    return [sorted(indices) for _, indices in heap[0][2]]


def plan_micro_batches(lengths: Sequence[int], dp_size: int, token_budget: int, *, packed: bool,
                       segment_multiple: int = 1, row_multiple: int = 1,
                       count_multiple: int = 1) -> list[list[list[int]]]:
    """plan[dp_rank][micro_batch] = indices into `lengths` (prompt + response tokens per sequence). Every
    rank gets the same count of micro-batches, the fewest (a multiple of count_multiple) with which each
    fits the budget; a sequence that alone exceeds the budget goes alone. A micro-batch is empty only when
    its rank has fewer sequences than the count. Micro-batches come heaviest first. segment_multiple applies
    to packed rows only: a padded row is one segment, its width rounded up to row_multiple."""
    for name, value in dict(dp_size=dp_size, token_budget=token_budget, segment_multiple=segment_multiple,
                            row_multiple=row_multiple, count_multiple=count_multiple).items():
        if value < 1:
            raise ValueError(f"plan_micro_batches needs {name} >= 1, got {value}")
    if any(length < 1 for length in lengths):
        raise ValueError(f"plan_micro_batches needs every sequence length >= 1, got {min(lengths)}")
    seq_cost = [round_up(n, segment_multiple if packed else row_multiple) for n in lengths]
    ranks = karmarkar_karp(seq_cost, dp_size)

    def cost(group: list[int]) -> int:
        return _micro_batch_cost(lengths, group, packed, segment_multiple, row_multiple)

    splits = [_PackedSplits(rank, seq_cost, row_multiple, token_budget) if packed
              else _PaddedSplits(rank, seq_cost, token_budget) for rank in ranks]
    count = round_up(max(max(split.fewest() for split in splits), 1), count_multiple)
    while True:
        plan = [split.groups(count) for split in splits]
        if all(groups is not None for groups in plan):
            return [sorted(groups + [[] for _ in range(count - len(groups))], key=lambda g: (-cost(g), g))
                    for groups in plan]
        count += count_multiple  # a rank's sequences do not fit: one more round of micro-batches


class _PackedSplits:
    """Packed micro-batches of one rank: each sequence that alone exceeds the budget goes alone; the others are
    spread by Karmarkar-Karp over the remaining micro-batches, which balances them for the pipeline, or, where
    balanced sums would overflow the budget (a rank filled close to count * budget), packed first-fit
    decreasing, which fills micro-batches to the budget and so keeps their count the fewest."""

    def __init__(self, indices: list[int], seq_cost: list[int], row_multiple: int, budget: int):
        self.row_multiple, self.budget = row_multiple, budget
        self.alone = [[i] for i in indices if not self._fits(seq_cost[i])]
        self.rest = [i for i in indices if self._fits(seq_cost[i])]
        self.seq_cost = seq_cost

    def _fits(self, total: int) -> bool:
        return round_up(total, self.row_multiple) <= self.budget

    def fewest(self) -> int:
        """A lower bound on the micro-batches needed (the loop in plan_micro_batches raises it)."""
        return len(self.alone) + -(-sum(self.seq_cost[i] for i in self.rest) // self.budget)

    def groups(self, count: int):
        """The split into count micro-batches (fewer when there are fewer sequences), None if none fits."""
        free = count - len(self.alone)
        if free < 1:
            return None if self.rest else self.alone
        costs = [self.seq_cost[i] for i in self.rest]
        groups = [[self.rest[j] for j in part] for part in karmarkar_karp(costs, free) if part]
        if all(self._fits(sum(self.seq_cost[i] for i in g)) for g in groups):
            return self.alone + groups
        groups = self._first_fit_decreasing(free)
        return None if groups is None else self.alone + groups

    def _first_fit_decreasing(self, parts: int):
        """The `parts` longest sequences open the micro-batches (none stays empty), the others go, longest
        first, into the first micro-batch they fit."""
        order = sorted(self.rest, key=lambda i: (-self.seq_cost[i], i))
        groups, sums = [[i] for i in order[:parts]], [self.seq_cost[i] for i in order[:parts]]
        for i in order[parts:]:
            part = next((p for p in range(parts) if self._fits(sums[p] + self.seq_cost[i])), None)
            if part is None:
                return None
            groups[part].append(i)
            sums[part] += self.seq_cost[i]
        return [sorted(g) for g in groups]


class _PaddedSplits:
    """Right-padded micro-batches of one rank: its sequences sorted by length and cut into contiguous groups
    (similar lengths together is what cuts padding), the cuts chosen by dynamic programming to minimise the
    padded total for a given group count. best[k][i] = least cost of the i shortest sequences in k groups."""

    def __init__(self, indices: list[int], widths: list[int], budget: int):
        self.indices = sorted(indices, key=lambda i: (widths[i], i))
        self.widths = [widths[i] for i in self.indices]
        self.budget = budget
        n = len(self.widths)
        self.best = [[0] + [None] * n]
        self.cut: list[list] = [[None] * (n + 1)]

    def _layer(self) -> None:
        previous, n = self.best[-1], len(self.widths)
        best, cut = [None] * (n + 1), [None] * (n + 1)
        for i in range(1, n + 1):
            width = self.widths[i - 1]  # the longest of a group that ends at i
            for size in range(1, min(i, max(1, self.budget // width)) + 1):
                before = previous[i - size]
                if before is not None and (best[i] is None or before + size * width < best[i]):
                    best[i], cut[i] = before + size * width, i - size
        self.best.append(best)
        self.cut.append(cut)

    def fewest(self) -> int:
        """The fewest groups that fit the budget (0 for no sequences)."""
        while self.best[-1][-1] is None:
            self._layer()
        return len(self.best) - 1

    def groups(self, count: int) -> list[list[int]]:
        """The cheapest split into min(count, sequences) groups (count >= fewest())."""
        count = min(count, len(self.widths))
        while len(self.best) <= count:
            self._layer()
        groups, end = [], len(self.widths)
        for k in range(count, 0, -1):
            start = self.cut[k][end]
            groups.append(sorted(self.indices[start:end]))
            end = start
        return groups


def layout_cost(lengths: Sequence[int], plan: list[list[list[int]]], *, packed: bool, segment_multiple: int = 1,
                row_multiple: int = 1) -> dict:
    """Tokens a layout computes, per rank and in all (an empty micro-batch runs a one-row stand-in of
    row_multiple tokens), against the useful tokens: waste = computed / useful, imbalance = the most loaded
    rank over the least, micro_batches = the most any rank runs."""
    per_rank = [sum(_micro_batch_cost(lengths, group, packed, segment_multiple, row_multiple) if group
                    else row_multiple for group in rank) for rank in plan]
    useful = sum(lengths)
    return dict(computed_per_rank=per_rank, computed=sum(per_rank), useful=useful,
                waste=sum(per_rank) / useful if useful else float("inf"),
                imbalance=max(per_rank) / min(per_rank), micro_batches=max(len(rank) for rank in plan))


def _micro_batch_cost(lengths: Sequence[int], group: list[int], packed: bool, segment_multiple: int,
                      row_multiple: int) -> int:
    if not group:
        return 0
    if packed:
        return round_up(sum(round_up(lengths[i], segment_multiple) for i in group), row_multiple)
    return len(group) * round_up(max(lengths[i] for i in group), row_multiple)


def round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple