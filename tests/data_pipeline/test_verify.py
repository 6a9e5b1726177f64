"""The verify stage with the real judge: bad tests dropped, references failing a kept test dropped, problems
whose references fail or whose tests are weak rejected with their reason, function-call and C++ references,
and resume from the checkpoint without asking the judge again."""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from judge.pool import JudgePool
from judge.problem import Problem, TestCase
from megatron_mc.data.pipeline.jsonl import write_records
from megatron_mc.data.pipeline.record import ProblemRecord
from megatron_mc.data.pipeline.stage import Resources, StageContext
from megatron_mc.data.pipeline.verify import Agreement, VerifyConfig, agreement, run_verify

SUM_PY = "a, b = map(int, input().split())\nprint(a + b)\n"
SUM_PY_OTHER = "import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))\n"
SUM_CPP = "#include <iostream>\nint main() { long long a, b; std::cin >> a >> b; std::cout << a + b << '\\n'; }\n"
SUM_TESTS = [("1 2\n", "3\n"), ("10 -4\n", "6\n"), ("5 5\n", "10\n"), ("0 0\n", "0\n"), ("7 8\n", "15\n")]


class CountingPool(JudgePool):
    """The real pool, counting the submissions it is asked to judge (problem id, language)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.asked: list[tuple[str, str]] = []
        self._asked_lock = threading.Lock()

    def submit_future(self, problem, code, language="python", all_tests=False):
        with self._asked_lock:
            self.asked.append((problem.id, language))
        return super().submit_future(problem, code, language, all_tests)


class PoolResources(Resources):
    """The run's shared resources, with the pool the test made (to count what it is asked)."""

    def __init__(self, pool: JudgePool) -> None:
        super().__init__(workers=pool.workers)
        self.pool = pool

    def judge_pool(self):
        return self.pool


@pytest.fixture(scope="module")
def pool():
    with CountingPool(workers=2) as judge_pool:
        yield judge_pool


def context(tmp_path, pool) -> StageContext:
    return StageContext(tmp_path / "verify", workers=2, quiet=True, resources=PoolResources(pool))


def stdio_record(problem_id, tests=SUM_TESTS, references=(SUM_PY,), incorrect=(), time_limit_s=2.0,
                 **fields) -> ProblemRecord:
    problem = Problem(id=problem_id, kind="stdio", tests=[TestCase(i, o) for i, o in tests],
                      time_limit_s=time_limit_s, memory_limit_mb=256)
    return ProblemRecord(problem=problem, source=fields.pop("source", "bundled"),
                         reference_solutions=[_solution(s) for s in references],
                         incorrect_solutions=[_solution(s) for s in incorrect], **fields)


def _solution(spec) -> dict:
    language, code = spec if isinstance(spec, tuple) else ("python", spec)
    return {"language": language, "code": code}


def outcome(output):
    return ({r.id: r for r in output.kept}, {r.id: r.reason for r in output.rejected})


def test_agreement_rule():
    # 4 references x 5 tests. Reference 3 passes 2/5: not a passing one. Reference 2 passes tests 1 and 2, so
    # they are kept and references 0 and 1, which fail them (WA, TLE), are dropped.
    verdicts = [["AC", "WA", "AC", "AC", "AC"], ["AC", "WA", "TLE", "AC", "AC"], ["AC", "AC", "AC", "AC", "AC"],
                ["AC", "WA", "WA", "AC", "WA"]]
    agreed = agreement(verdicts, 5, 0.5)
    assert (agreed.passing, agreed.kept_tests, agreed.bad_tests, agreed.dropped_references) == \
        ([2], [0, 1, 2, 3, 4], [], [0, 1])
    # every passing reference (two or more) gets WA on test 2: a bad test, the references kept
    verdicts = [["AC", "AC", "WA", "AC"], ["AC", "AC", "WA", "AC"], ["AC", "WA", "WA", "WA"]]
    assert agreement(verdicts, 4, 0.5) == Agreement([0, 1], [0, 1, 3], [2], [])
    # ... but not when one of them times out there: that says nothing against the test
    verdicts = [["AC", "AC", "WA", "AC"], ["AC", "AC", "TLE", "AC"]]
    assert agreement(verdicts, 4, 0.5) == Agreement([], [0, 1, 2, 3], [], [0, 1])
    # one reference: a test it fails drops the reference, never the test
    assert agreement([["AC", "AC", "WA"]], 3, 0.5) == Agreement([], [0, 1, 2], [], [0])
    assert agreement([["AC", "AC", "TLE"]], 3, 0.5) == Agreement([], [0, 1, 2], [], [0])
    # a reference passing exactly half is not a passing one ("more than")
    assert agreement([["AC", "WA"]], 2, 0.5) == agreement([], 2, 0.5) == Agreement([], [], [], [])


def test_planted_bad_test_is_dropped_and_references_kept(tmp_path, pool):
    tests = list(SUM_TESTS)
    tests[2] = ("5 5\n", "11\n")  # wrong expected output: every reference fails it
    record = stdio_record("bad-test", tests, references=(SUM_PY, SUM_PY_OTHER, ("cpp", SUM_CPP)),
                          annotations={"tags": ["math"]})
    kept, rejected = outcome(run_verify([record], VerifyConfig(), context(tmp_path, pool)))
    assert rejected == {}
    verified = kept["bad-test"]
    assert [t.input for t in verified.problem.tests] == [t for t, _ in tests if t != "5 5\n"]
    assert verified.annotations["verify"]["bad_tests"] == [2]
    assert verified.annotations["tags"] == ["math"]
    assert [s["language"] for s in verified.reference_solutions] == ["python", "python", "cpp"]


def test_test_a_correct_reference_passes_is_kept_and_references_failing_it_dropped(tmp_path, pool):
    wrong_on_zero = "a, b = map(int, input().split())\nprint(a + b if a else 99)\n"  # fails test 3 ("0 0")
    mostly_wrong = "print(3)\n"  # passes 1 of 5 tests: not a passing reference
    record = stdio_record("disputed", references=(SUM_PY, wrong_on_zero, mostly_wrong))
    kept, _ = outcome(run_verify([record], VerifyConfig(), context(tmp_path, pool)))
    info = kept["disputed"].annotations["verify"]
    assert (info["bad_tests"], info["dropped_references"], info["tests_after"]) == ([], [1], 5)
    assert [s["code"] for s in kept["disputed"].reference_solutions] == [SUM_PY]


SLOW_ON_BIG = ("import time\na, b = map(int, input().split())\n"
               "if a > 1000:\n    time.sleep(3)\nprint(a + b)\n")  # the O(n^2) reference: TLE on the large test
BIG_TESTS = SUM_TESTS + [("100000 1\n", "100001\n")]


def test_slow_reference_timing_out_on_the_large_test_is_dropped_not_the_test(tmp_path, pool):
    fast_and_slow = stdio_record("fast-and-slow", tests=BIG_TESTS, references=(SLOW_ON_BIG, SUM_PY))
    slow_only = stdio_record("slow-only", tests=BIG_TESTS, references=(SLOW_ON_BIG,))
    for record in (fast_and_slow, slow_only):
        record.problem = dataclasses.replace(record.problem, time_limit_s=1.0)
    output = run_verify([fast_and_slow, slow_only], VerifyConfig(), context(tmp_path, pool))
    kept, rejected = outcome(output)
    info = kept["fast-and-slow"].annotations["verify"]
    assert (info["tests_after"], info["bad_tests"], info["dropped_references"]) == (6, [], [0])
    assert [s["code"] for s in kept["fast-and-slow"].reference_solutions] == [SUM_PY]
    # the single reference times out on the large test: the reference goes (and with it the problem), not the test
    assert rejected == {"slow-only": "no_reference_passes"}


def test_one_reference_failing_a_test_with_wa_rejects_the_problem(tmp_path, pool):
    tests = list(SUM_TESTS)
    tests[2] = ("5 5\n", "11\n")  # wrong expected output, but one reference alone cannot tell
    kept, rejected = outcome(run_verify([stdio_record("one-ref", tests)], VerifyConfig(), context(tmp_path, pool)))
    assert rejected == {"one-ref": "no_reference_passes"}


def test_public_test_count_follows_the_kept_tests(tmp_path, pool):
    tests = list(SUM_TESTS)
    tests[0] = ("1 2\n", "4\n")  # a wrong public example
    record = stdio_record("public", tests, references=(SUM_PY, SUM_PY_OTHER))
    record.problem = dataclasses.replace(record.problem, metadata={"public_tests": 2})
    kept, _ = outcome(run_verify([record], VerifyConfig(), context(tmp_path, pool)))
    assert kept["public"].problem.metadata["public_tests"] == 1
    assert kept["public"].annotations["verify"]["bad_tests"] == [0]


def test_rejection_reasons(tmp_path, pool):
    records = [
        stdio_record("all-fail", references=("print(0)\n", ("cpp", "int main() { return 1; }\n"))),
        stdio_record("no-ref", references=()),
        stdio_record("java-only", references=(("java", "class Main {}"),)),
        stdio_record("few", tests=SUM_TESTS[:3] + [("1 1\n", "3\n"), ("2 2\n", "5\n")],
                     references=(SUM_PY, SUM_PY_OTHER)),
        stdio_record("ok", references=(SUM_PY,)),
    ]
    output = run_verify(records, VerifyConfig(min_tests=4), context(tmp_path, pool))
    kept, rejected = outcome(output)
    assert rejected == {"all-fail": "no_reference_passes", "no-ref": "no_reference_solution",
                        "java-only": "no_reference_solution", "few": "too_few_tests_after_verify"}
    assert list(kept) == ["ok"]
    details = {r.id: r.detail for r in output.rejected}
    assert "java" in details["java-only"] and "3 of 5 tests kept (2 bad)" in details["few"]
    assert output.report["bad_tests"] == 2


def test_function_call_problem_runs_python_references_only(tmp_path, pool):
    problem = Problem(id="fn-add", kind="function", fn_name="add", time_limit_s=2.0, memory_limit_mb=256,
                      tests=[TestCase("1\n2", "3"), TestCase("[1]\n[2]", "[1, 2]"), TestCase("0\n0", "0"),
                             TestCase("5\n6", "12")])  # the last one is wrong
    record = ProblemRecord(problem=problem, source="humaneval",
                           reference_solutions=[{"language": "python", "code": "def add(a, b):\n    return a + b\n"},
                                                {"language": "cpp", "code": SUM_CPP},
                                                {"language": "python", "code": "import operator\n\n\n"
                                                 "def add(a, b):\n    return operator.add(a, b)\n"}])
    only_cpp = ProblemRecord(problem=Problem(id="fn-cpp", kind="function", fn_name="add", tests=problem.tests),
                             source="humaneval", reference_solutions=[{"language": "cpp", "code": SUM_CPP}])
    kept, rejected = outcome(run_verify([record, only_cpp], VerifyConfig(), context(tmp_path, pool)))
    assert rejected == {"fn-cpp": "no_reference_solution"}
    assert len(kept["fn-add"].problem.tests) == 3
    assert kept["fn-add"].reference_solutions == [record.reference_solutions[0], record.reference_solutions[2]]


def test_cpp_only_reference_verifies(tmp_path, pool):
    tests = list(SUM_TESTS) + [("1000000000000 1\n", "1000000000001\n")]
    record = stdio_record("cpp-only", tests, references=(("c++17", SUM_CPP),))
    kept, rejected = outcome(run_verify([record], VerifyConfig(), context(tmp_path, pool)))
    assert rejected == {} and kept["cpp-only"].annotations["verify"]["tests_after"] == 6


def test_weak_tests_caught_by_known_wrong_solution(tmp_path, pool):
    max_tests = [("5 1\n", "5\n"), ("9 3\n", "9\n"), ("4 4\n", "4\n")]
    reference = "print(max(map(int, input().split())))\n"
    first_number = "print(input().split()[0])\n"  # wrong, yet right on every test above
    min_number = "print(min(map(int, input().split())))\n"  # wrong, and the tests show it
    weak = stdio_record("weak", max_tests, references=(reference,), incorrect=(first_number, min_number))
    strong = stdio_record("strong", max_tests + [("2 8\n", "8\n")], references=(reference,),
                          incorrect=(first_number, min_number))
    output = run_verify([weak, strong], VerifyConfig(min_tests=3), context(tmp_path, pool))
    kept, rejected = outcome(output)
    assert rejected == {"weak": "weak_tests"}
    assert "known-wrong solution 0" in output.rejected[0].detail
    assert kept["strong"].annotations["verify"]["incorrect_caught"] == 2
    lenient = run_verify([weak], VerifyConfig(min_tests=3, require_incorrect_fail=False),
                         context(tmp_path / "lenient", pool))
    assert [r.id for r in lenient.kept] == ["weak"]


def test_resume_judges_only_unfinished_problems(tmp_path, pool):
    first, second = stdio_record("first"), stdio_record("second", references=(SUM_PY, ("cpp", SUM_CPP)))
    cfg = VerifyConfig()
    pool.asked.clear()
    # a run killed after "first": its result is in the checkpoint, "second" never finished
    run_verify([first], cfg, context(tmp_path, pool))
    assert pool.asked == [("first", "python")]
    checkpoint = tmp_path / "verify" / "verify.checkpoint.jsonl"
    assert [json.loads(line)["id"] for line in checkpoint.read_text().splitlines()] == ["first"]

    pool.asked.clear()
    resumed = run_verify([first, second], cfg, context(tmp_path, pool))
    assert sorted(pool.asked) == [("second", "cpp"), ("second", "python")]
    assert [r.id for r in resumed.kept] == ["first", "second"]
    assert resumed.report["reused_from_checkpoint"] == 1

    pool.asked.clear()
    again = run_verify([first, second], cfg, context(tmp_path, pool))
    assert pool.asked == []
    assert [r.to_row() for r in again.kept] == [r.to_row() for r in resumed.kept]

    # a problem whose tests changed is judged again, not taken from the checkpoint
    changed = stdio_record("first", SUM_TESTS[:4])
    pool.asked.clear()
    run_verify([changed, second], cfg, context(tmp_path, pool))
    assert pool.asked == [("first", "python")]


KILLED_RUN = """
import sys
from megatron_mc.data.pipeline.jsonl import read_records
from megatron_mc.data.pipeline.stage import StageContext
from megatron_mc.data.pipeline.verify import VerifyConfig, run_verify
run_verify(read_records(sys.argv[1]), VerifyConfig(), StageContext(sys.argv[2], workers=1, quiet=True))
"""


def test_run_killed_in_the_middle_resumes_without_rejudging(tmp_path, pool):
    slow = "import time\ntime.sleep(0.8)\n" + SUM_PY  # 4 s over five tests: the kill lands in the middle
    # A wall limit far above the sleep (2 * 10 + 1 s): while the rehearsals run on the other xdist worker, a
    # process here can wait seconds to run (a 20 ms sleep woke 3.4 s late; a 0.8 s test took 5.8 s), past
    # the 5 s wall of a 2 s limit.
    records = [stdio_record("fast"), stdio_record("slow", references=(slow,), time_limit_s=10.0)]
    write_records(tmp_path / "in.jsonl", records)
    stage_dir = tmp_path / "verify"
    checkpoint = stage_dir / "verify.checkpoint.jsonl"
    repo = Path(__file__).resolve().parents[2]
    run = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(tmp_path / "in.jsonl"), str(stage_dir)],
                           cwd=repo, env={**os.environ, "PYTHONPATH": str(repo)})
    try:
        deadline = time.monotonic() + 60
        while not (checkpoint.exists() and b'"fast"' in checkpoint.read_bytes()):
            assert run.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no checkpoint line for 'fast'"
            time.sleep(0.05)
        run.send_signal(signal.SIGKILL)
    finally:
        run.kill()
        run.wait()
    assert b'"slow"' not in checkpoint.read_bytes()

    pool.asked.clear()
    resumed = run_verify(records, VerifyConfig(), context(tmp_path, pool))
    assert pool.asked == [("slow", "python")]
    assert [r.id for r in resumed.kept] == ["fast", "slow"], [(r.id, r.reason, r.detail) for r in resumed.rejected]
    assert resumed.report["reused_from_checkpoint"] == 1


def test_statistics_and_histogram_written(tmp_path, pool):
    records = [stdio_record("s1", platform="atcoder", difficulty="easy"),
               stdio_record("s2", references=("print(0)\n",), platform="codeforces", difficulty="1900")]
    output = run_verify(records, VerifyConfig(), context(tmp_path, pool))
    stats = json.loads((tmp_path / "verify" / "statistics.json").read_text())
    assert stats["before"]["platform"] == {"atcoder": 1, "codeforces": 1}
    assert stats["after"]["platform"] == {"atcoder": 1}
    assert output.report["statistics"]["after"]["total"] == 1
    assert (tmp_path / "verify" / "difficulty_histogram.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_duplicate_ids_are_named(tmp_path, pool):
    with pytest.raises(ValueError, match="'twice' appears more than once"):
        run_verify([stdio_record("twice"), stdio_record("twice")], VerifyConfig(), context(tmp_path, pool))


@pytest.mark.parametrize("bad", [{"min_tests": 0}, {"passing_reference_fraction": 1.0},
                                 {"time_limit_scale": 0}, {"languages": ["java"]},
                                 {"languages": "python"}, {"languages": []}])
def test_bad_config_names_the_key(bad):
    with pytest.raises(ValueError, match=f"verify.{next(iter(bad))}"):
        VerifyConfig(**bad)


def test_bundled_planted_wrong_test_is_caught_by_two_agreeing_references(tmp_path, pool):
    from megatron_mc.data.pipeline.collect import SourceConfig
    from megatron_mc.data.pipeline.collect_sources.own_schema import collect_bundled

    record = next(r for r in collect_bundled(SourceConfig("bundled")).records if r.id.endswith("max-subarray"))
    assert len(record.reference_solutions) >= 2
    kept, rejected = outcome(run_verify([record], VerifyConfig(), context(tmp_path, pool)))
    assert rejected == {}
    info = kept[record.id].annotations["verify"]
    assert (info["bad_tests"], info["dropped_references"]) == ([3], [])
