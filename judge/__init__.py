"""judge: sandboxed, exact and fast evaluation of code submissions (see judge/pool.py for the API)."""
from judge.pool import JudgePool, default_pool, judge_submission, judge_submission_async
from judge.problem import (
    Checker,
    Comparison,
    Problem,
    ProblemError,
    TestCase,
    load_problem_file,
    load_problems_jsonl,
)
from judge.verdict import JudgeResult, TestResult, Verdict, reward_from_result

__all__ = [
    "Checker",
    "Comparison",
    "JudgePool",
    "JudgeResult",
    "Problem",
    "ProblemError",
    "TestCase",
    "TestResult",
    "Verdict",
    "default_pool",
    "judge_submission",
    "judge_submission_async",
    "load_problem_file",
    "load_problems_jsonl",
    "reward_from_result",
]
