"""Problem builders shared by the judge tests."""
from __future__ import annotations

from judge.problem import Problem, TestCase

SUM_TESTS = [("1 2\n", "3\n"), ("10 -4\n", "6\n"), ("1000000000000 1\n", "1000000000001\n")]


def stdio_problem(pairs=SUM_TESTS, time_limit_s: float = 2.0, memory_limit_mb: int = 256, **extra) -> Problem:
    return Problem(id="p", kind="stdio", tests=[TestCase(i, o) for i, o in pairs], time_limit_s=time_limit_s,
                   memory_limit_mb=memory_limit_mb, **extra)


def function_problem(fn_name: str, pairs, **extra) -> Problem:
    return Problem(id="f", kind="function", tests=[TestCase(i, o) for i, o in pairs], fn_name=fn_name,
                   time_limit_s=2.0, memory_limit_mb=256, **extra)
