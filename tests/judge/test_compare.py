"""outputs_match and values_match: every rule, in both directions (a right output matches, a wrong one not)."""
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from judge.compare import outputs_match, values_match
from judge.problem import Comparison

DEFAULT = Comparison()


@pytest.mark.parametrize(
    "expected, actual",
    [
        ("3\n", "3\n"),
        ("3\n", "3"),  # trailing newline irrelevant
        ("1 2 3\n", "1 2 3   \n\n\n"),  # trailing spaces and blank lines irrelevant
        ("1 2\n3\n", "1\n2 3"),  # different line breaks
        ("a\tb", "a b"),
        ("1 2\r\n3\r\n", "1 2\n3\n"),  # Windows line ends
        ("YES", "YES"),
        ("1.0", "1.0000001"),  # within 1e-6 absolute
        ("1.0000001", "1.0"),
        ("-2.50", "-2.5"),
        ("0.5", "5e-1"),
        ("1e-3", "0.001"),
        ("1.0", "1"),  # an integer-looking actual is still a finite number
        ("123456789.0", "123456789.1"),  # within 1e-6 relative
        ("2.5E+3", "2500"),
        ("", ""),
        ("", "\n  \n"),
    ],
)
def test_accepted_outputs(expected, actual):
    assert outputs_match(expected, actual, DEFAULT)


@pytest.mark.parametrize(
    "expected, actual",
    [
        ("YES", "yes"),  # case-sensitive by default
        ("Yes", "YES"),
        ("1.0", "1.01"),
        ("1.0", "1.000002"),  # beyond both tolerances
        ("3", "3.0"),  # integer expected token: exact text
        ("3", "03"),
        ("3", "+3"),
        ("0.5", "nan"),
        ("0.5", "NaN"),
        ("0.5", "inf"),
        ("1e308", "1e999"),  # overflows to inf
        ("0.5", "0.5x"),
        ("0.5", "½"),
        ("1.5", "1_0.5"),  # float() would read 10.5
        ("1.5", "١.٥"),  # non-ASCII digits: float() would read 1.5
        ("1 2 3", "1 2"),  # missing token
        ("1 2", "1 2 3"),  # extra token
        ("1 2", "2 1"),  # order matters by default
        ("abc", "ab c"),  # whitespace inside a token matters
        ("", "0"),
        ("0", ""),
        ("nan", "0.5"),  # a non-numeric expected token is text
        ("inf", "1e999"),
    ],
)
def test_rejected_outputs(expected, actual):
    assert not outputs_match(expected, actual, DEFAULT)


def test_case_insensitive_comparison_lowers_both_sides():
    loose = Comparison(case_insensitive=True)
    assert outputs_match("YES\nNo", "yes\nNO", loose)
    assert outputs_match("1.5E+3", "1500", loose)
    assert not outputs_match("YES", "YEP", loose)


def test_tolerances_come_from_the_comparison():
    assert outputs_match("1.0", "1.01", Comparison(abs_tol=0.02, rel_tol=0))
    assert not outputs_match("1.0", "1.01", Comparison(abs_tol=0.001, rel_tol=0))
    assert outputs_match("1000.0", "1001", Comparison(abs_tol=0, rel_tol=1e-3))
    exact = Comparison(abs_tol=0, rel_tol=0)
    assert outputs_match("0.50", "0.5", exact)  # same number, different notation
    assert not outputs_match("0.5", "0.5000001", exact)


def test_unordered_compares_the_multiset_of_lines():
    unordered = Comparison(unordered=True)
    assert outputs_match("1 2\n3 4\n5 6\n", "5 6\n1 2\n\n3 4", unordered)
    assert outputs_match("a b\na b\nc\n", "c\na b\na  b\n", unordered)  # repeated lines, spaces inside a line
    assert outputs_match("0.5 x\n1.25 y\n", "1.2500001 y\n0.5000001 x\n", unordered)  # tolerance per token
    assert not outputs_match("1 2\n3 4\n", "1 2\n1 2\n", unordered)  # multiset, not set
    assert not outputs_match("1 2\n3 4\n", "2 1\n4 3\n", unordered)  # tokens inside a line stay ordered
    assert not outputs_match("1 2\n3 4\n", "1 2 3 4\n", unordered)  # lines keep their breaks
    assert not outputs_match("1\n2\n", "1\n2\n3\n", unordered)


def test_unordered_finds_the_pairing_when_sorted_order_misleads():
    unordered = Comparison(unordered=True)
    # Sorting by value pairs 1.0 with 1.0000001 (wrong letters); only the crossed pairing is right.
    assert outputs_match("1.0 b\n1.0000001 a\n", "1.0000001 b\n1.0 a\n", unordered)
    assert not outputs_match("1.0 b\n1.0000001 a\n", "1.0000001 b\n1.0 b\n", unordered)


def test_long_outputs_are_compared_token_by_token():
    expected = "\n".join(" ".join(str(i * j) for j in range(10)) for i in range(30_000))  # ~1.5 MB
    assert outputs_match(expected, expected.replace("\n", " ") + "\n", DEFAULT)
    assert not outputs_match(expected, expected[:-1] + "7", DEFAULT)
    values = [i / 7 for i in range(50_000)]
    floats = " ".join(f"{v:.6f}" for v in values)
    assert outputs_match(floats, " ".join(f"{v:.9f}" for v in values), DEFAULT)
    assert not outputs_match(floats, " ".join(f"{v:.6f}" for v in values[:-1]) + " 1.5", DEFAULT)


# Whitespace-separated tokens: any non-space text, so the property covers words, numbers and symbols.
tokens = st.lists(st.text(st.characters(blacklist_categories=("Zs", "Zl", "Zp", "Cc")), min_size=1), max_size=30)
separators = st.sampled_from([" ", "\n", "\t", "  ", " \n", "\r\n", "\n\n"])


@settings(max_examples=200, deadline=None)
@given(tokens, st.data())
def test_any_output_matches_itself_and_its_reformatting(words, data):
    text = " ".join(words)
    assert outputs_match(text, text, DEFAULT)
    reformatted = "".join(w + data.draw(separators) for w in words)
    assert outputs_match(text, reformatted, DEFAULT)
    assert outputs_match(reformatted, text, DEFAULT)
    assert outputs_match(text, reformatted, Comparison(case_insensitive=True))


@settings(max_examples=200, deadline=None)
@given(tokens)
def test_an_extra_token_is_never_accepted(words):
    text = " ".join(words)
    assert not outputs_match(text, text + " extra", DEFAULT)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.integers(-5, 5).map(str), min_size=1, max_size=4), max_size=12), st.randoms())
def test_unordered_accepts_any_shuffle_of_the_lines(lines, random):
    text = "\n".join(" ".join(line) for line in lines)
    shuffled = list(lines)
    random.shuffle(shuffled)
    assert outputs_match(text, "\n".join(" ".join(line) for line in shuffled), Comparison(unordered=True))


@pytest.mark.parametrize(
    "expected, actual",
    [
        ([1, 2, 3], [1, 2, 3]),
        ([1, 2], (1, 2)),  # list and tuple alike
        ({"a": [1, (2, 3)]}, {"a": [1, [2, 3]]}),
        (0.1 + 0.2, 0.3),
        (1.0, 1.0000001),
        (3, 3.0),  # a float on either side: tolerance
        (2.5, 2.5000001),
        (True, True),
        (None, None),
        ("abc", "abc"),
        ([[1.0, 2.0], []], [[1, 2.0000001], ()]),
        (10**30, 10**30),
    ],
)
def test_equal_values(expected, actual):
    assert values_match(expected, actual, DEFAULT)


@pytest.mark.parametrize(
    "expected, actual",
    [
        ([1, 2, 3], [1, 2]),
        ([1, 2], [2, 1]),
        (True, 1),  # bool is not int
        (1, True),
        (False, 0),
        (0, None),
        (3, 4),
        (10**30, 10**30 + 1),  # ints exact, however large
        (1.0, 1.01),
        (0.5, float("nan")),
        (0.5, float("inf")),
        ("abc", "ABC"),
        ("1", 1),
        ({"a": 1}, {"a": 1, "b": 2}),  # dict keys exact
        ({"1": 1}, {1: 1}),
        ([1], 1),  # no unwrapping unless the problem asks for it
        (10**400, 1e308),
    ],
)
def test_different_values(expected, actual):
    assert not values_match(expected, actual, DEFAULT)


def test_unwrapped_singleton_is_accepted_only_when_the_problem_allows_it():
    taco = Comparison(accept_unwrapped_singleton=True)
    assert values_match([[4, 6]], [4, 6], taco)
    assert values_match([[4, 6]], [[4, 6]], taco)
    assert values_match([True], True, taco)
    assert not values_match([[4, 6]], [6, 4], taco)
    assert not values_match([1, 2], 1, taco)  # only a one-element list unwraps
    assert not values_match([[4, 6]], [4, 6], DEFAULT)


def test_function_results_as_the_judge_sees_them_after_json():
    assert values_match(json.loads("[1, 2.0]"), json.loads("[1.0000000001, 2]"), DEFAULT)
    assert not values_match(json.loads("true"), json.loads("1"), DEFAULT)
