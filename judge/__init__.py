"""judge: sandboxed, exact and fast evaluation of code submissions (see judge/pool.py for the API).

Exports resolve on first use: the zygote imports `judge.zygote`, and everything imported there is
copied on every fork, so importing the package itself must not pull in the pool, asyncio and the rest.
"""
import importlib

_EXPORTS = {
    "JudgePool": "judge.pool",
    "default_pool": "judge.pool",
    "judge_submission": "judge.pool",
    "judge_submission_async": "judge.pool",
    "Checker": "judge.problem",
    "Comparison": "judge.problem",
    "Interactor": "judge.problem",
    "Problem": "judge.problem",
    "ProblemError": "judge.problem",
    "TestCase": "judge.problem",
    "load_problem_file": "judge.problem",
    "load_problems_jsonl": "judge.problem",
    "JudgeResult": "judge.verdict",
    "TestResult": "judge.verdict",
    "Verdict": "judge.verdict",
    "reward_from_result": "judge.verdict",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'judge' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
