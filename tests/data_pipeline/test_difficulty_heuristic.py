"""Dimensions (names, weights, errors naming the key) and the heuristic predictor's signals."""
from __future__ import annotations

import pytest

from judge.problem import Problem, TestCase
from megatron_mc.data.pipeline.difficulty.dimensions import DEFAULT_WEIGHTS, DimensionError, Dimensions
from megatron_mc.data.pipeline.difficulty.heuristic_predictor import (
    constraint_exponent, predict_heuristic, source_level)
from megatron_mc.data.pipeline.record import ProblemRecord

DIMS = Dimensions.from_weights(DEFAULT_WEIGHTS)


def record(statement: str, difficulty: str | None = None, **annotations) -> ProblemRecord:
    return ProblemRecord(Problem("p", "stdio", [TestCase("1\n", "1\n")]), source="test", statement=statement,
                         difficulty=difficulty, annotations=annotations)


def test_default_dimensions_and_weighted_score():
    assert DIMS.names == ("algorithmic_thinking", "mathematical_reasoning", "implementation_complexity",
                          "edge_cases_and_constraints", "problem_comprehension")
    assert sum(DIMS.weights) == pytest.approx(1.0)
    assert DIMS.weighted({n: 4.0 for n in DIMS.names}) == pytest.approx(4.0)
    custom = Dimensions.from_weights({"speed": 0.25, "insight": 0.75})
    assert custom.weighted({"speed": 2, "insight": 6}) == pytest.approx(5.0)


@pytest.mark.parametrize("weights, message", [
    ({"a": 0.5, "b": 0.6}, r"dimensions: weights must sum to 1, they sum to 1\.1"),
    ({"a": 1.2, "b": -0.2}, r"dimensions\.b: weight must be >= 0"),
    ({"a": "half", "b": 0.5}, r"dimensions\.a: weight must be a number"),
    ({"two words": 1.0}, r"'two words' must be a snake_case identifier"),
    ({}, r"at least one dimension"),
])
def test_bad_dimensions_name_the_key(weights, message):
    with pytest.raises(DimensionError, match=message):
        Dimensions.from_weights(weights)


@pytest.mark.parametrize("text, exponent", [
    ("1 <= n <= 2·10^5", 5.30), (r"1 \le n \le 2 \cdot 10^{5}", 5.30), ("a_i ≤ 1e9", 9.0), ("|x| < 10⁹", 9.0),
    ("n ≤ 100000", 5.0), ("x <= 1 000 000", 6.0), ("up to 10**18", 18.0), ("Print the sum of a and b.", 0.0),
])
def test_constraint_sizes_are_read_in_their_usual_spellings(text, exponent):
    assert constraint_exponent(text) == pytest.approx(exponent, abs=0.01)


def test_source_ratings_and_labels_map_to_the_scale():
    assert source_level(record("x", "easy")) < source_level(record("x", "medium")) < source_level(record("x", "HARD"))
    assert source_level(record("x", rating=800)) == pytest.approx(1.0)
    assert source_level(record("x", rating=3500)) == pytest.approx(10.0)
    assert source_level(record("x", "competition")) > source_level(record("x", "introductory"))
    assert source_level(record("x", "?")) is None


def test_heuristic_scores_follow_constraints_length_tags_and_rating():
    easy = record("Read two integers a and b (1 <= a, b <= 100) and print a + b.")
    big = record("Read n (1 <= n <= 2·10^5) and an array a (|a_i| <= 10^18); print the number of inversions. " * 6)
    tagged = record(big.statement, tags=["dp", "number theory"])
    rated = record(big.statement, rating=3000)
    scores = [predict_heuristic(r, DIMS) for r in (easy, big, tagged, rated)]
    for s in scores:
        assert set(s) == set(DIMS.names) and all(1 <= v <= 10 for v in s.values())
    weighted = [DIMS.weighted(s) for s in scores]
    assert weighted[0] < weighted[1] < weighted[2]
    assert weighted[3] > weighted[1]
    assert scores[1]["edge_cases_and_constraints"] > scores[0]["edge_cases_and_constraints"]
    assert scores[2]["mathematical_reasoning"] > scores[1]["mathematical_reasoning"]
    assert scores[1]["problem_comprehension"] > scores[0]["problem_comprehension"]
    custom = Dimensions.from_weights({"overall": 1.0})
    assert set(predict_heuristic(big, custom)) == {"overall"}
