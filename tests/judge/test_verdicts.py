"""Verdicts per test and overall, early stop, all-tests mode, serialized form, reward."""
import json

import pytest

from judge.verdict import JudgeResult, Verdict, reward_from_result
from judge_test_helpers import SUM_TESTS, stdio_problem

CORRECT = "a, b = map(int, input().split())\nprint(a + b)\n"
# Right on tests 1 and 3, wrong on test 2.
SOMETIMES = "a, b = map(int, input().split())\nprint(a + b if a != 10 else 0)\n"


def test_early_stop_at_first_failure_by_default(judge_pool):
    result = judge_pool.judge(stdio_problem(SUM_TESTS), SOMETIMES)
    assert result.verdict is Verdict.WA
    assert [t.verdict for t in result.tests] == [Verdict.AC, Verdict.WA]
    assert (result.passed, result.total) == (1, 3)


def test_all_tests_option_runs_every_test(judge_pool):
    result = judge_pool.judge(stdio_problem(SUM_TESTS), SOMETIMES, all_tests=True)
    assert [t.verdict for t in result.tests] == [Verdict.AC, Verdict.WA, Verdict.AC]
    assert (result.verdict, result.passed, result.total) == (Verdict.WA, 2, 3)


def test_result_serializes_to_the_documented_json_form(judge_pool):
    result = judge_pool.judge(stdio_problem(SUM_TESTS), CORRECT)
    row = json.loads(json.dumps(result.to_dict()))
    assert set(row) == {"verdict", "passed", "total", "tests", "wall_s"}
    assert row["verdict"] == "AC" and row["passed"] == row["total"] == 3
    assert all(set(t) == {"verdict", "time_s"} and t["time_s"] > 0 for t in row["tests"])
    assert row["wall_s"] >= sum(t["time_s"] for t in row["tests"]) * 0.5
    assert JudgeResult.from_dict(row).to_dict() == row


@pytest.mark.parametrize("code, verdict", [
    ("while True:\n    pass\n", Verdict.TLE),
    ("import time\ntime.sleep(30)\n", Verdict.TLE),
    ("x = bytearray(4 << 30)\n", Verdict.MLE),
    ("s = 'x' * (1 << 20)\nparts = []\nwhile True:\n    parts.append(s * 8)\n", Verdict.MLE),
    ("while True:\n    print('x' * 4096)\n", Verdict.OLE),
    ("import sys\nsys.stdout.write('y' * (80 << 20))\n", Verdict.OLE),
    ("raise ValueError('boom')\n", Verdict.RE),
    ("import os\nos._exit(4)\n", Verdict.RE),
    ("def f(n):\n    return f(n + 1)\nf(0)\n", Verdict.RE),
])
def test_failure_verdicts(judge_pool, code, verdict):
    result = judge_pool.judge(stdio_problem(SUM_TESTS, time_limit_s=0.5), code)
    assert result.verdict is verdict, result.to_dict()
    assert result.tests[0].verdict is verdict


def test_runtime_error_detail_has_the_traceback(judge_pool):
    result = judge_pool.judge(stdio_problem(SUM_TESTS), "raise ValueError('boom-marker')\n")
    assert "ValueError" in result.detail and "boom-marker" in result.detail


def test_reward_is_one_for_ac_only(judge_pool):
    accepted = judge_pool.judge(stdio_problem(SUM_TESTS), CORRECT)
    partial = judge_pool.judge(stdio_problem(SUM_TESTS), SOMETIMES, all_tests=True)
    assert reward_from_result(accepted) == 1.0 and reward_from_result(accepted.to_dict()) == 1.0
    assert partial.passed == 2 and reward_from_result(partial) == 0.0
