"""How different a group's responses are from each other (MicroCoder's diversity signal).

distinct-n: unique n-grams over all n-grams in the group's responses (1 = no n-gram repeats).
self-similarity: mean pairwise Jaccard overlap of the responses' n-gram sets (1 = identical responses).
"""
from __future__ import annotations

from itertools import combinations


def ngrams(tokens: list[int], n: int) -> list[tuple[int, ...]]:
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(responses: list[list[int]], n: int) -> float:
    grams = [g for r in responses for g in ngrams(r, n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def self_similarity(responses: list[list[int]], n: int) -> float:
    sets = [set(ngrams(r, n)) for r in responses]
    pairs = list(combinations(sets, 2))
    if not pairs:
        return 1.0
    return sum(len(a & b) / len(a | b) if (a | b) else 1.0 for a, b in pairs) / len(pairs)


def mean_over_groups(groups: list[list[list[int]]], measure, n: int) -> float:
    return sum(measure(g, n) for g in groups) / len(groups) if groups else 0.0
