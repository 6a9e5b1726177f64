"""Deciding whether a program's output is the expected one.

Two entry points, both exact in both directions:
- `outputs_match` for stdio programs: whitespace-insensitive token comparison; an expected token written as a
  decimal number (with a point or an exponent) accepts any finite number within the tolerance.
- `values_match` for function-call results already parsed from JSON: deep equality with float tolerance.
  The child sends plain JSON (judge/executor.py turns numpy values into Python numbers and lists, Decimal and
  Fraction into an int when integral else a float, a set into its elements sorted). Decided here:
  * a bool equals only a bool: LeetCode's `true` is not 1, and 1 is not `true` (LiveCodeBench's `==` would
    accept both);
  * an int equals an int exactly, however large; a float on either side compares within the tolerance;
  * NaN equals only an expected NaN; -0.0 equals 0; lists and tuples alike; dicts by key, in any order;
  * element order counts unless the problem's comparison is `unordered`: then a top-level list (a set's
    elements included) matches the expected one in any order, as a multiset. With order counting, a set
    matches only an expected list holding its elements in sorted order: LiveCodeBench compares a set with
    `==` and never accepts it; we accept what the set holds when nothing but its order could differ.

It runs in the judge's parent process for every test, so plain `str` comparison decides wherever it can; the
number grammar is only consulted for tokens that already differ as text.
"""
from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

from judge.problem import Comparison

# ASCII digits only: float() would also accept "nan", "inf", "1_000" and non-ASCII digits, none of which a
# judge should read as a number.
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)

# Unordered outputs whose lines pair only within tolerance get an exact (quadratic) matching up to this size.
_EXACT_MATCHING_MAX_LINES = 300


def _as_number(token: str) -> float | None:
    """The finite value of a token in plain decimal notation, else None."""
    if _NUMBER.fullmatch(token) is None:
        return None
    value = float(token)
    return value if math.isfinite(value) else None


def _is_decimal_literal(token: str) -> bool:
    # Integers are compared as text ("3.0" is not "3"); only a point or an exponent invites tolerance.
    return "." in token or "e" in token or "E" in token


def _within(expected: float, actual: float, comparison: Comparison) -> bool:
    difference = abs(actual - expected)
    return difference <= comparison.abs_tol or difference <= comparison.rel_tol * abs(expected)


def _tokens_match(expected: str, actual: str, comparison: Comparison) -> bool:
    if expected == actual:
        return True
    if not _is_decimal_literal(expected):
        return False
    expected_value = _as_number(expected)
    if expected_value is None:
        return False
    actual_value = _as_number(actual)
    return actual_value is not None and _within(expected_value, actual_value, comparison)


def _token_lists_match(expected: list[str], actual: list[str], comparison: Comparison) -> bool:
    if len(expected) != len(actual):
        return False
    if expected == actual:  # one C-level pass decides the usual accepted case
        return True
    return all(_tokens_match(e, a, comparison) for e, a in zip(expected, actual))


def _ordered_tokens(expected: str, actual: str, comparison: Comparison) -> bool:
    return _token_lists_match(expected.split(), actual.split(), comparison)


def _line_tokens(text: str) -> list[tuple[str, ...]]:
    lines = (tuple(line.split()) for line in text.splitlines())
    return [line for line in lines if line]


def _sort_key(line: tuple[str, ...]) -> tuple[tuple[int, float, str], ...]:
    # Numbers sort by value, so lines that differ only in number formatting end up side by side.
    key = []
    for token in line:
        value = _as_number(token)
        key.append((0, value, "") if value is not None else (1, 0.0, token))
    return tuple(key)


def _perfect_matching_exists(expected: list, actual: list, pair_matches: Callable[[Any, Any], bool]) -> bool:
    """Kuhn's augmenting paths over the pairs that match; quadratic, so only for a few items."""
    candidates = [[j for j, a in enumerate(actual) if pair_matches(e, a)] for e in expected]
    owner: list[int | None] = [None] * len(actual)

    def augment(i: int, seen: set[int]) -> bool:
        for j in candidates[i]:
            if j not in seen:
                seen.add(j)
                if owner[j] is None or augment(owner[j], seen):
                    owner[j] = i
                    return True
        return False

    return all(augment(i, set()) for i in range(len(expected)))


def _unordered_lines(expected: str, actual: str, comparison: Comparison) -> bool:
    expected_lines = _line_tokens(expected)
    actual_lines = _line_tokens(actual)
    if len(expected_lines) != len(actual_lines):
        return False
    unmatched_expected = Counter(expected_lines)
    unmatched_actual = Counter(actual_lines)
    common = unmatched_expected & unmatched_actual
    unmatched_expected -= common
    unmatched_actual -= common
    # Lines equal as text are paired above; the rest can only pair within tolerance. Pairing in sorted order
    # is a valid matching when it succeeds; it can miss one only when lines differ within tolerance in one
    # number and differ in a later token, which the exact search settles for outputs of modest size.
    rest_expected = [list(line) for line in sorted(unmatched_expected.elements(), key=_sort_key)]
    rest_actual = [list(line) for line in sorted(unmatched_actual.elements(), key=_sort_key)]
    if all(_token_lists_match(e, a, comparison) for e, a in zip(rest_expected, rest_actual)):
        return True
    return len(rest_expected) <= _EXACT_MATCHING_MAX_LINES and _perfect_matching_exists(
        rest_expected, rest_actual, lambda e, a: _token_lists_match(e, a, comparison)
    )


_Strategy = Callable[[str, str, Comparison], bool]
_STRATEGIES: dict[bool, _Strategy] = {False: _ordered_tokens, True: _unordered_lines}


def outputs_match(expected: str, actual: str, comparison: Comparison) -> bool:
    """Whether a stdio program's output `actual` is accepted for the test's `expected` output."""
    if expected == actual:
        return True
    if comparison.case_insensitive:
        expected, actual = expected.lower(), actual.lower()
    return _STRATEGIES[comparison.unordered](expected, actual, comparison)


def _numbers_match(expected: float, actual: float, comparison: Comparison) -> bool:
    try:
        expected, actual = float(expected), float(actual)
    except OverflowError:  # an int beyond float range can only equal itself, which == already checked
        return False
    if not (math.isfinite(expected) and math.isfinite(actual)):
        return expected == actual or (math.isnan(expected) and math.isnan(actual))
    return _within(expected, actual, comparison)


def _values_equal(expected: Any, actual: Any, comparison: Comparison) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        if isinstance(expected, int) and isinstance(actual, int):
            return expected == actual
        return expected == actual or _numbers_match(expected, actual, comparison)
    if isinstance(expected, (list, tuple)) and isinstance(actual, (list, tuple)):
        return len(expected) == len(actual) and all(
            _values_equal(e, a, comparison) for e, a in zip(expected, actual)
        )
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() == actual.keys() and all(
            _values_equal(value, actual[key], comparison) for key, value in expected.items()
        )
    return type(expected) is type(actual) and expected == actual


def _value_sort_key(value: Any) -> tuple[int, float, str]:
    # Numbers by value, so that values equal within tolerance end up side by side; anything else by its text.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return (0, float(value), "")
        except OverflowError:  # an int beyond float range: only its side of the number line matters here
            return (0, math.inf if value > 0 else -math.inf, "")
    return (1, 0.0, json.dumps(value, sort_keys=True))


def _elements_match_in_any_order(expected: list, actual: list, comparison: Comparison) -> bool:
    if len(expected) != len(actual):
        return False
    rest_expected = sorted(expected, key=_value_sort_key)
    rest_actual = sorted(actual, key=_value_sort_key)
    if all(_values_equal(e, a, comparison) for e, a in zip(rest_expected, rest_actual)):
        return True
    return len(rest_expected) <= _EXACT_MATCHING_MAX_LINES and _perfect_matching_exists(
        rest_expected, rest_actual, lambda e, a: _values_equal(e, a, comparison)
    )


def _results_equal(expected: Any, actual: Any, comparison: Comparison) -> bool:
    if comparison.unordered and isinstance(expected, list) and isinstance(actual, (list, tuple)):
        return _elements_match_in_any_order(expected, list(actual), comparison)
    return _values_equal(expected, actual, comparison)


def values_match(expected: Any, actual: Any, comparison: Comparison) -> bool:
    """Whether a function's return value `actual` (parsed from JSON) equals the `expected` one."""
    if _results_equal(expected, actual, comparison):
        return True
    # TACO/APPS wrap call-based answers in a one-element list and their grader accepts the bare element too.
    return (
        comparison.accept_unwrapped_singleton
        and isinstance(expected, list)
        and len(expected) == 1
        and _results_equal(expected[0], actual, comparison)
    )
