"""Unbiased pass@k against hand-computed values and the binomial formula."""
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from megatron_mc.eval.pass_at_k import pass_at_k


@pytest.mark.parametrize("n, c, k, expected", [
    (5, 2, 1, 0.4),
    (5, 2, 2, 0.7),  # 1 - C(3,2)/C(5,2) = 1 - 3/10
    (4, 1, 2, 0.5),  # 1 - C(3,2)/C(4,2) = 1 - 3/6
    (4, 0, 3, 0.0),
    (4, 4, 1, 1.0),
    (10, 1, 10, 1.0),
    (16, 3, 4, 1 - 715 / 1820),  # 1 - C(13,4)/C(16,4)
])
def test_hand_computed(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


@given(st.integers(1, 60).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_matches_binomial_formula(nck):
    n, c, k = nck
    exact = 1.0 if n - c < k else 1 - math.comb(n - c, k) / math.comb(n, k)
    assert pass_at_k(n, c, k) == pytest.approx(exact, abs=1e-12)


def test_large_n_is_stable():
    assert pass_at_k(100_000, 1, 1) == pytest.approx(1e-5, rel=1e-9)
    assert pass_at_k(5000, 2500, 100) == pytest.approx(1.0)


def test_bad_arguments_say_what_is_wrong():
    with pytest.raises(ValueError, match="sample at least k"):
        pass_at_k(4, 1, 8)
    with pytest.raises(ValueError, match="0 <= c <= n"):
        pass_at_k(4, 5, 1)
