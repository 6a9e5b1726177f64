"""The dimensions a problem's difficulty is scored on (1-10 each) and their weights.

Names are snake_case keys (the judge LLM answers with them); weights are non-negative and sum to 1, so the
weighted score stays on the same 1-10 scale as the dimensions.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

SCORE_MIN, SCORE_MAX = 1.0, 10.0
WEIGHT_SUM_TOLERANCE = 1e-6

# Ours by default (the paper names the first and the third, and publishes no weights).
DEFAULT_WEIGHTS = {
    "algorithmic_thinking": 0.30,
    "mathematical_reasoning": 0.20,
    "implementation_complexity": 0.20,
    "edge_cases_and_constraints": 0.15,
    "problem_comprehension": 0.15,
}

# What the predictor prompt says about each default dimension; other names are shown as they are.
DESCRIPTIONS = {
    "algorithmic_thinking": "how much algorithmic insight is needed (choosing and combining algorithms, "
                            "data structures, complexity)",
    "mathematical_reasoning": "how much mathematics is needed (number theory, combinatorics, geometry, proofs)",
    "implementation_complexity": "how long and intricate a correct program is",
    "edge_cases_and_constraints": "how many edge cases and how tight the limits are (overflow, large inputs, "
                                  "empty or degenerate cases)",
    "problem_comprehension": "how hard the statement is to read and model correctly",
}


class DimensionError(ValueError):
    """Dimension names or weights that cannot be used; the message names the key."""


@dataclass(frozen=True)
class Dimensions:
    names: tuple[str, ...]
    weights: tuple[float, ...]

    @classmethod
    def from_weights(cls, weights: Mapping[str, float], where: str = "filter.difficulty.dimensions") -> Dimensions:
        """Validated dimensions; every error names `where` and the offending key."""
        if not isinstance(weights, Mapping) or not weights:
            raise DimensionError(f"{where}: give at least one dimension as name: weight")
        for name, weight in weights.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise DimensionError(f"{where}: dimension name {name!r} must be a snake_case identifier")
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
                raise DimensionError(f"{where}.{name}: weight must be a number, got {weight!r}")
            if weight < 0:
                raise DimensionError(f"{where}.{name}: weight must be >= 0, got {weight}")
        total = sum(weights.values())
        if abs(total - 1.0) > WEIGHT_SUM_TOLERANCE:
            raise DimensionError(f"{where}: weights must sum to 1, they sum to {total:.6g} "
                                 f"({', '.join(f'{k}={v}' for k, v in weights.items())})")
        return cls(tuple(weights), tuple(float(w) for w in weights.values()))

    def vector(self, scores: Mapping[str, float]) -> np.ndarray:
        return np.array([float(scores[name]) for name in self.names])

    def weighted(self, scores: Mapping[str, float]) -> float:
        return float(self.vector(scores) @ np.array(self.weights))

    def describe(self, name: str) -> str:
        return DESCRIPTIONS.get(name, name.replace("_", " "))


def clamp_score(value: float) -> float:
    return min(SCORE_MAX, max(SCORE_MIN, float(value)))
