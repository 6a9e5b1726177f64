"""The unbiased pass@k estimator of Chen et al. (2021): 1 - C(n-c, k) / C(n, k).

The binomial ratio is computed as a running product, prod_{i=n-c+1}^{n} (1 - k/i), which never forms
the (huge) binomial coefficients and stays accurate for large n.
"""
from __future__ import annotations


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn without replacement from n (c correct) passes."""
    if not 0 <= c <= n:
        raise ValueError(f"pass_at_k: need 0 <= c <= n, got c={c}, n={n}")
    if not 1 <= k <= n:
        raise ValueError(f"pass_at_k: need 1 <= k <= n, got k={k}, n={n}; sample at least k responses")
    if n - c < k:
        return 1.0
    all_fail = 1.0
    for i in range(n - c + 1, n + 1):
        all_fail *= 1.0 - k / i
    return 1.0 - all_fail
