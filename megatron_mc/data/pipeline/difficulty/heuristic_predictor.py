"""Difficulty without an LLM: per-dimension scores (1-10) from what a problem states about itself.

Signals: the largest constraint the statement names (10^5, 2·10^5, 2 \\cdot 10^{5}, 1e9, 10⁹, "n ≤ 100000"),
the statement's length, the problem's tags (Codeforces-style), and the platform's own rating or label
(a Codeforces rating, easy/medium/hard, TACO's introductory/interview/competition). The source's rating,
when there is one, dominates; the statement's structure moves each dimension around it. This is the
predictor when no LLM is given and the fallback for problems whose LLM answers could not be parsed.
"""
from __future__ import annotations

import math
import re

from megatron_mc.data.pipeline.difficulty.dimensions import Dimensions, clamp_score
from megatron_mc.data.pipeline.record import ProblemRecord

_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")
_SUPERSCRIPT_POWER = re.compile("(?<=10)([⁰¹²³⁴⁵⁶⁷⁸⁹]+)")
# [m ·] 10^e in ASCII, LaTeX or Python spelling (superscripts are rewritten to ^ first).
_POWER = re.compile(r"(?:(\d+(?:\.\d+)?)\s*(?:[·⋅*×x]|\\cdot|\\times)\s*)?10\s*(?:\^|\*\*)\s*\{?\s*(\d{1,2})\s*\}?")
_SCIENTIFIC = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)[eE]\+?(\d{1,2})\b")
# A plain number right after an upper-bound sign: "n ≤ 100000", "a_i <= 1 000 000", "x \le 200,000".
_BOUND = re.compile(r"(?:≤|<=|\\leq?|<)\s*(\d{1,3}(?:[ ,]\d{3})+|\d+)\b")

LABEL_LEVELS = {
    "easy": 2.5, "introductory": 2.5, "medium": 5.0, "interview": 5.0, "medium_hard": 6.5,
    "hard": 7.5, "competition": 7.5, "very_hard": 9.0,
}
CODEFORCES_MIN, CODEFORCES_MAX = 800, 3500

ALGORITHM_TAGS = {
    "brute force": 0.0, "implementation": 0.5, "sortings": 0.5, "strings": 1.0, "two pointers": 1.5,
    "greedy": 1.5, "binary search": 2.0, "bitmasks": 2.0, "dfs and similar": 2.0, "constructive algorithms": 2.0,
    "dp": 2.5, "graphs": 2.5, "trees": 2.5, "data structures": 2.5, "dsu": 2.5, "hashing": 2.5, "games": 2.5,
    "shortest paths": 2.5, "divide and conquer": 3.0, "string suffix structures": 4.0, "flows": 4.0,
    "graph matchings": 4.0, "2-sat": 4.0, "fft": 4.5,
}
MATH_TAGS = {"math": 1.5, "number theory": 2.5, "combinatorics": 3.0, "geometry": 3.0, "probabilities": 3.0,
             "matrices": 3.0, "fft": 3.5, "chinese remainder theorem": 3.5}
IMPLEMENTATION_TAGS = {"implementation": 1.0, "data structures": 1.5, "geometry": 1.5, "expression parsing": 2.0,
                       "schedules": 1.0}
_MATH_WORDS = re.compile(r"\b(?:modulo|mod|prime|gcd|lcm|divisible|probability|permutations?|binomial|"
                         r"expected value)\b|\\(?:sum|prod|binom|frac)", re.IGNORECASE)


def constraint_exponent(statement: str) -> float:
    """log10 of the largest constraint the statement names; 0 when it names none."""
    text = _SUPERSCRIPT_POWER.sub(lambda m: "^" + m.group(1).translate(_SUPERSCRIPTS), statement)
    values = [float(m or 1) * 10 ** int(e) for m, e in _POWER.findall(text)]
    values += [float(m) * 10 ** int(e) for m, e in _SCIENTIFIC.findall(text)]
    values += [float(re.sub(r"[ ,]", "", n)) for n in _BOUND.findall(text)]
    largest = max((v for v in values if v >= 1), default=1.0)
    return math.log10(largest)


def tags_of(record: ProblemRecord) -> list[str]:
    tags = record.annotations.get("tags") or record.problem.metadata.get("tags") or []
    if isinstance(tags, str):
        tags = tags.split(",")
    return [str(t).strip().lower().replace("_", " ") for t in tags if str(t).strip()]


def source_level(record: ProblemRecord) -> float | None:
    """The platform's own rating or label on the 1-10 scale, or None when it has none."""
    rating = record.annotations.get("rating")
    for value in (rating, record.difficulty):
        if value is None:
            continue
        text = str(value).strip().lower().replace(" ", "_").replace("-", "_")
        if text in LABEL_LEVELS:
            return LABEL_LEVELS[text]
        try:
            number = float(text)
        except ValueError:
            continue
        if number >= 100:  # a Codeforces-style rating
            return clamp_score(1 + 9 * (number - CODEFORCES_MIN) / (CODEFORCES_MAX - CODEFORCES_MIN))
        return clamp_score(number)  # already on a 1-10 scale (Kattis, ours)
    return None


def predict_heuristic(record: ProblemRecord, dimensions: Dimensions) -> dict[str, float]:
    """A 1-10 score per dimension."""
    statement = record.statement or str(record.problem.metadata.get("question_content") or "")
    tags = tags_of(record)
    size = min(4.0, max(0.0, (constraint_exponent(statement) - 2) * 0.5))  # 1e5 -> 1.5, 1e9 -> 3.5
    length = min(3.0, max(0.0, math.log2(max(len(statement), 1) / 300)))   # 300 chars -> 0, 2400 -> 3
    algorithm = max((ALGORITHM_TAGS.get(t, 1.0) for t in tags), default=0.0)
    maths = max((MATH_TAGS.get(t, 0.0) for t in tags), default=0.0) + min(2.0, 0.5 * len(_MATH_WORDS.findall(statement)))
    implementation = max((IMPLEMENTATION_TAGS.get(t, 0.0) for t in tags), default=0.0)
    structural = 1.5 + size + length + 0.8 * algorithm
    rated = source_level(record)
    base = structural if rated is None else 0.7 * rated + 0.3 * clamp_score(structural)
    adjustments = {
        "algorithmic_thinking": 0.5 * algorithm + 0.3 * size - 0.8,
        "mathematical_reasoning": maths - 1.0,
        "implementation_complexity": 0.5 * length + implementation - 0.8,
        "edge_cases_and_constraints": 0.6 * size - 0.6,
        "problem_comprehension": 0.7 * length - 0.7,
    }
    return {name: round(clamp_score(base + adjustments.get(name, 0.0)), 3) for name in dimensions.names}
