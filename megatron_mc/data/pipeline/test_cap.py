"""A cap on each problem's tests: public (sample) tests first, then the rest in order, up to a count and a
total size, so that a problem with hundreds of tests does not stall a training step."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from judge.problem import Problem, TestCase


@dataclass
class TestCapConfig:
    max_tests: int = 20
    max_total_bytes: int = 1_000_000   # inputs plus expected outputs, UTF-8

    __test__ = False  # not a pytest class

    def __post_init__(self) -> None:
        if self.max_tests < 1 or self.max_total_bytes < 1:
            raise ValueError("max_tests and max_total_bytes must be >= 1")


def _size(test: TestCase) -> int:
    return len(test.input.encode()) + len(test.output.encode())


def cap_tests(problem: Problem, cfg: TestCapConfig) -> Problem | None:
    """The problem with its tests capped (metadata["public_tests"] updated), or None when no test fits."""
    public = int(problem.metadata.get("public_tests") or 0)
    kept: list[TestCase] = []
    kept_public = 0
    total = 0
    for index, test in enumerate(problem.tests):
        if len(kept) == cfg.max_tests:
            break
        if total + _size(test) > cfg.max_total_bytes:
            continue  # a smaller test after it may still fit
        kept.append(test)
        total += _size(test)
        kept_public += index < public
    if not kept:
        return None
    if len(kept) == len(problem.tests):
        return problem
    metadata = {**problem.metadata, "tests_before_cap": len(problem.tests)}
    if public:
        metadata["public_tests"] = kept_public
    return dataclasses.replace(problem, tests=kept, metadata=metadata)
