"""Judge one submission against one problem on one zygote: load (compile) once, run the tests in order,
compare each output here in the judging process, stop at the first failure unless asked to run all.

How an output is judged is chosen in one place (`_judge_output`): the problem's checker when it has one,
else stdio token comparison or function-call value comparison (judge/compare.py). An interactive problem's
tests run with its interactor instead (`_run_test`, judge/interactive.py), whose verdict replaces the comparison.

The C++ standard is chosen in one place too (`cpp_standard`): a language name that fixes one ("c++17")
first, then the problem's cpp_std, then the pool's, then the compiler's default (judge/compile.py). The
zygote is told the standard as the submission's language ("python", or a standard such as "gnu++20").
"""
from __future__ import annotations

import json
import time
from decimal import Decimal
from dataclasses import dataclass

from judge import checker as checkers
from judge import interactive
from judge.compare import outputs_match, values_match
from judge.compile import default_standard
from judge.executor import Outcome
from judge.problem import Problem, TestCase, check_cpp_standard
from judge.sandbox import Limits
from judge.verdict import JudgeResult, TestResult, Verdict, overall, verdict_of_run
from judge.zygote import Zygote

# Language names that fix the C++ standard of the submission (over the problem's and the pool's).
STANDARD_BY_LANGUAGE = {
    "cpp17": "c++17", "c++17": "c++17", "gnu++17": "gnu++17",
    "cpp20": "c++20", "c++20": "c++20", "gnu++20": "gnu++20",
}
LANGUAGE_ALIASES = {
    "python": "python", "python3": "python", "py": "python", "py3": "python",
    "cpp": "cpp", "c++": "cpp", "cc": "cpp", "cxx": "cpp", **{name: "cpp" for name in STANDARD_BY_LANGUAGE},
}
_DETAIL_CHARS = 2000


@dataclass(frozen=True)
class JudgeSettings:
    """What a pool applies to every submission it judges."""

    cpp_std: str | None = None  # for problems that name none; None: the compiler's default (judge/compile.py)
    time_limit_scale: float = 1.0  # multiplies every problem's time limit (slow or contended machines)

    def __post_init__(self) -> None:
        if self.cpp_std is not None:
            check_cpp_standard(self.cpp_std, "cpp_std")
        if not (self.time_limit_scale > 0):
            raise ValueError(f"time_limit_scale must be > 0, got {self.time_limit_scale!r}")


def normalize_language(language: str) -> str:
    try:
        return LANGUAGE_ALIASES[language.strip().lower()]
    except (KeyError, AttributeError):
        raise ValueError(f"unknown language {language!r}; use 'python', 'cpp' or one naming the C++ standard "
                         f"({', '.join(STANDARD_BY_LANGUAGE)})") from None


def cpp_standard(language: str, problem: Problem, settings: JudgeSettings) -> str:
    """The -std value a C++ submission in `language` (any alias) is compiled with."""
    named = STANDARD_BY_LANGUAGE.get(language.strip().lower())
    return named or problem.cpp_std or settings.cpp_std or default_standard()


def judge_on(zygote: Zygote, problem: Problem, code: str, language: str, all_tests: bool = False,
             settings: JudgeSettings = JudgeSettings()) -> JudgeResult:
    """Raises ZygoteError when the zygote fails; the caller replaces it and reports SE."""
    start = time.monotonic()
    total = len(problem.tests)
    python = normalize_language(language) == "python"
    if problem.kind == "function" and not python:
        return JudgeResult(Verdict.CE, 0, total, [], 0.0, "function-call problems take Python solutions")
    runs_as = "python" if python else cpp_standard(language, problem, settings)
    limits = Limits(problem.time_limit_s * settings.time_limit_scale, problem.memory_limit_mb)
    status, message = zygote.load(runs_as, problem.kind, problem.fn_name, code, limits)
    if status != "ok":
        return JudgeResult(Verdict(status), 0, total, [], time.monotonic() - start, message)
    tests: list[TestResult] = []
    detail = ""  # stderr of the first failing test, for people reading results
    try:
        for index, test in enumerate(problem.tests):
            verdict, outcome = _run_test(zygote, problem, test, limits, index + 1 < total)
            tests.append(TestResult(verdict, outcome.wall_s))
            if verdict is not Verdict.AC and not detail:
                detail = outcome.stderr.decode("utf-8", errors="replace")[-_DETAIL_CHARS:]
            if verdict is not Verdict.AC and not all_tests:
                break
    finally:
        zygote.unload()
    passed = sum(t.verdict is Verdict.AC for t in tests)
    return JudgeResult(overall(tests), passed, total, tests, time.monotonic() - start, detail)


def _run_test(zygote: Zygote, problem: Problem, test: TestCase, limits: Limits,
              more_tests_follow: bool) -> tuple[Verdict, Outcome]:
    if problem.interactor is not None:  # the interactor's verdict replaces the comparison
        return interactive.judge_test(zygote, problem.interactor, test, limits)
    outcome = zygote.run(test.input.encode(), limits.wall_limit_s, more_tests_follow)
    return verdict_of_run(outcome, limits.time_limit_s) or _judge_output(problem, test, outcome, limits), outcome


def _judge_output(problem: Problem, test: TestCase, outcome: Outcome, limits: Limits) -> Verdict:
    if problem.checker is not None:
        try:
            return checkers.check(problem.checker, test.input, test.output, outcome.stdout, limits.time_limit_s)
        except checkers.CheckerError:
            return Verdict.SE
    if problem.kind == "function":
        return _function_verdict(problem, test, outcome)
    actual = outcome.stdout.decode("utf-8", errors="replace")
    return Verdict.AC if outputs_match(test.output, actual, problem.comparison) else Verdict.WA


def _function_verdict(problem: Problem, test: TestCase, outcome: Outcome) -> Verdict:
    try:
        expected = json.loads(test.output, parse_int=_json_int)
    except json.JSONDecodeError:
        return Verdict.SE  # the problem's expected output is not JSON: a data error, not the submission's
    try:
        actual = json.loads(outcome.payload, parse_int=_json_int)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return Verdict.WA  # no result (unserializable, or never returned)
    return Verdict.AC if values_match(expected, actual, problem.comparison) else Verdict.WA


def _json_int(text: str) -> int:
    # CPython refuses int() of more than 4300 digits (sys.get_int_max_str_digits); through Decimal, an exact
    # conversion, answers such as a factorial stay numbers, as the children write them (judge/zygote.py).
    return int(text) if len(text) <= 4000 else int(Decimal(text))


def system_error(problem: Problem, error: Exception, wall_s: float) -> JudgeResult:
    return JudgeResult(Verdict.SE, 0, len(problem.tests), [], wall_s, f"judge error: {type(error).__name__}: {error}")
