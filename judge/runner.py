"""Judge one submission against one problem on one zygote: load (compile) once, run the tests in order,
compare each output here in the judging process, stop at the first failure unless asked to run all.

How an output is judged is chosen in one place (`_judge_output`): the problem's checker when it has one,
else stdio token comparison or function-call value comparison (judge/compare.py).
"""
from __future__ import annotations

import json
import time

from judge import checker as checkers
from judge.compare import outputs_match, values_match
from judge.executor import Outcome
from judge.problem import Problem, TestCase
from judge.sandbox import Limits
from judge.verdict import JudgeResult, TestResult, Verdict, overall, verdict_of_run
from judge.zygote import Zygote

LANGUAGE_ALIASES = {
    "python": "python", "python3": "python", "py": "python", "py3": "python",
    "cpp": "cpp", "c++": "cpp", "cpp17": "cpp", "c++17": "cpp", "cc": "cpp", "cxx": "cpp",
}
_DETAIL_CHARS = 2000


def normalize_language(language: str) -> str:
    try:
        return LANGUAGE_ALIASES[language.strip().lower()]
    except (KeyError, AttributeError):
        raise ValueError(f"unknown language {language!r}; use 'python' or 'cpp'") from None


def judge_on(zygote: Zygote, problem: Problem, code: str, language: str, all_tests: bool = False) -> JudgeResult:
    """Raises ZygoteError when the zygote fails; the caller replaces it and reports SE."""
    language = normalize_language(language)
    start = time.monotonic()
    total = len(problem.tests)
    if problem.kind == "function" and language != "python":
        return JudgeResult(Verdict.CE, 0, total, [], 0.0, "function-call problems take Python solutions")
    limits = Limits(problem.time_limit_s, problem.memory_limit_mb)
    status, message = zygote.load(language, problem.kind, problem.fn_name, code, limits)
    if status != "ok":
        return JudgeResult(Verdict(status), 0, total, [], time.monotonic() - start, message)
    tests: list[TestResult] = []
    detail = ""  # stderr of the first failing test, for people reading results
    try:
        for index, test in enumerate(problem.tests):
            outcome = zygote.run(test.input.encode(), limits.wall_limit_s, index + 1 < total)
            verdict = verdict_of_run(outcome, limits.time_limit_s) or _judge_output(problem, test, outcome)
            tests.append(TestResult(verdict, outcome.wall_s))
            if verdict is not Verdict.AC and not detail:
                detail = outcome.stderr.decode("utf-8", errors="replace")[-_DETAIL_CHARS:]
            if verdict is not Verdict.AC and not all_tests:
                break
    finally:
        zygote.unload()
    passed = sum(t.verdict is Verdict.AC for t in tests)
    return JudgeResult(overall(tests), passed, total, tests, time.monotonic() - start, detail)


def _judge_output(problem: Problem, test: TestCase, outcome: Outcome) -> Verdict:
    if problem.checker is not None:
        try:
            return checkers.check(problem.checker, test.input, test.output, outcome.stdout, problem.time_limit_s)
        except checkers.CheckerError:
            return Verdict.SE
    if problem.kind == "function":
        return _function_verdict(problem, test, outcome)
    actual = outcome.stdout.decode("utf-8", errors="replace")
    return Verdict.AC if outputs_match(test.output, actual, problem.comparison) else Verdict.WA


def _function_verdict(problem: Problem, test: TestCase, outcome: Outcome) -> Verdict:
    try:
        expected = json.loads(test.output)
    except json.JSONDecodeError:
        return Verdict.SE  # the problem's expected output is not JSON: a data error, not the submission's
    try:
        actual = json.loads(outcome.payload)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return Verdict.WA  # no result (unserializable, or never returned)
    return Verdict.AC if values_match(expected, actual, problem.comparison) else Verdict.WA


def system_error(problem: Problem, error: Exception, wall_s: float) -> JudgeResult:
    return JudgeResult(Verdict.SE, 0, len(problem.tests), [], wall_s, f"judge error: {type(error).__name__}: {error}")
