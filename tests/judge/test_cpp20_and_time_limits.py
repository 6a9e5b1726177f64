"""C++20 by default with the standard settable per submission, problem and pool; Kattis time limit rules
(.timelimit, limits.time_limit, time multipliers) and the judge-wide time limit scale, through the pool,
the service and the loader, with real g++, real zygotes and packages written by the tests."""
import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from judge.compile import DEFAULT_STANDARDS, default_standard
from judge.loaders.kattis import calibrated_time_limit, load_package
from judge.pool import JudgePool
from judge.problem import DEFAULT_TIME_LIMIT_S, Problem, ProblemError
from judge.runner import JudgeSettings, cpp_standard, normalize_language
from judge.service import create_app
from judge.verdict import Verdict
from judge_test_helpers import SUM_TESTS, stdio_problem

REPO = Path(__file__).resolve().parents[2]
# Sums the numbers it reads, with three C++20 library features (7 of 188 accepted C++ files of an ICPC archive).
CPP20_SUM = """
#include <bits/stdc++.h>
int main() {
    std::vector<long long> v;
    long long x;
    while (std::cin >> x) v.push_back(x);
    std::ranges::sort(v);
    std::set<long long> seen(v.begin(), v.end());
    if (!seen.contains(v.front()) || std::ssize(v) != 2) return 1;
    std::cout << v[0] + v[1] << "\\n";
}
"""
# Burns 0.4 s of CPU time, then answers: TLE under a 0.2 s limit, AC once the limit is scaled by 5.
SLOW_SUM = """
import time
start = time.process_time()
while time.process_time() - start < 0.4:
    pass
a, b = map(int, input().split())
print(a + b)
"""


def _compile_as(standard: str, source: str) -> str:
    """compile_cpp in a fresh process (it forks; the test process has threads), as the zygote calls it."""
    script = """
import os, shutil, sys, tempfile
from judge import sandbox
from judge.compile import compile_cpp
root = tempfile.mkdtemp()
os.chmod(root, 0o711)
scratch = os.path.join(root, "s")
os.mkdir(scratch, 0o700)
sandbox.give_to_sandbox_user(scratch)
result = compile_cpp(sys.stdin.read(), scratch, sys.argv[1])
shutil.rmtree(root)
print("compiled" if result.binary else "CE " + result.message)
"""
    done = subprocess.run([sys.executable, "-c", script, standard], input=source, capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_compile_cpp_uses_the_standard_it_is_given():
    assert _compile_as("gnu++20", CPP20_SUM).startswith("compiled")
    refused = _compile_as("c++17", CPP20_SUM)
    assert refused.startswith("CE ") and "contains" in refused
    assert _compile_as("cpp", CPP20_SUM).startswith("compiled")  # "cpp": the compiler's default, C++20 here


def test_default_standard_is_gnu20_on_a_current_compiler():
    major = int(subprocess.run(["g++", "-dumpversion"], capture_output=True, text=True).stdout.split(".")[0])
    if major < 10:
        pytest.skip(f"g++ {major} has no -std=gnu++20")
    assert default_standard() == DEFAULT_STANDARDS[0] == "gnu++20"


def test_an_old_compiler_falls_back_to_cpp17_and_says_why(tmp_path):
    # g++ 8 and 9 know C++20 only as c++2a: this g++ refuses both C++20 names and compiles the rest.
    fake = tmp_path / "g++"
    fake.write_text('#!/bin/sh\ncase "$1" in -std=gnu++20|-std=c++20) echo "unrecognized option $1" >&2; exit 1;; '
                    'esac\nexec /usr/bin/g++ "$@"\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "PYTHONPATH": str(REPO)}
    probe = "from judge.compile import default_standard; print(default_standard())"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    assert done.stdout.strip() == "c++17"
    assert "does not accept -std=gnu++20, -std=c++20; C++ is compiled as c++17" in done.stderr


def test_cpp20_submission_is_accepted_by_default(judge_pool):
    result = judge_pool.judge(stdio_problem(SUM_TESTS), CPP20_SUM, "cpp")
    assert result.verdict is Verdict.AC, result.detail


def test_standard_is_chosen_by_language_then_problem_then_pool_then_compiler():
    plain, pinned = stdio_problem(), stdio_problem(cpp_std="gnu++17")
    assert cpp_standard("cpp", plain, JudgeSettings()) == default_standard()
    assert cpp_standard("cpp", plain, JudgeSettings(cpp_std="c++17")) == "c++17"
    assert cpp_standard("C++", pinned, JudgeSettings(cpp_std="c++17")) == "gnu++17"
    assert cpp_standard("c++20", pinned, JudgeSettings(cpp_std="c++17")) == "c++20"
    assert cpp_standard("cpp17", plain, JudgeSettings()) == "c++17"


def test_a_language_naming_cpp20_overrides_a_problem_pinned_to_cpp17(judge_pool):
    result = judge_pool.judge(stdio_problem(SUM_TESTS, cpp_std="c++17"), CPP20_SUM, "c++20")
    assert result.verdict is Verdict.AC, result.detail


def test_cpp17_forced_by_the_language_name_is_a_compile_error(judge_pool):
    assert judge_pool.judge(stdio_problem(SUM_TESTS), CPP20_SUM, "c++17").verdict is Verdict.CE


def test_cpp17_forced_by_the_problem_is_a_compile_error(judge_pool):
    assert judge_pool.judge(stdio_problem(SUM_TESTS, cpp_std="c++17"), CPP20_SUM, "cpp").verdict is Verdict.CE


def test_cpp17_forced_by_the_pool_is_a_compile_error():
    with JudgePool(workers=1, cpp_std="c++17") as pool:
        assert pool.judge(stdio_problem(SUM_TESTS), CPP20_SUM, "cpp").verdict is Verdict.CE


def test_unknown_standards_and_scales_are_refused_by_name():
    with pytest.raises(ProblemError, match=r"cpp_std: unknown C\+\+ standard 'c\+\+98'.*gnu\+\+20"):
        Problem.from_dict({"id": "p", "kind": "stdio", "tests": [{"input": "", "output": ""}], "cpp_std": "c++98"})
    with pytest.raises(ValueError, match="cpp_std: unknown C"):
        JudgePool(workers=1, cpp_std="c++2a")
    with pytest.raises(ValueError, match="time_limit_scale must be > 0"):
        JudgePool(workers=1, time_limit_scale=0)
    with pytest.raises(ValueError, match=r"unknown language 'c\+\+98'.*c\+\+17"):
        normalize_language("c++98")


def test_cpp_std_survives_the_json_form():
    problem = stdio_problem(cpp_std="c++17")
    assert Problem.from_dict(json.loads(json.dumps(problem.to_dict()))).cpp_std == "c++17"


# ---- time limits ---------------------------------------------------------------------------------------

def _package(root: Path, name: str, problem_yaml: str, timelimit: str | None = None) -> Path:
    folder = root / name
    for group, (given, answer) in {"sample": SUM_TESTS[0], "secret": SUM_TESTS[1]}.items():
        (folder / "data" / group).mkdir(parents=True)
        (folder / "data" / group / "1.in").write_text(given)
        (folder / "data" / group / "1.ans").write_text(answer)
    (folder / "problem.yaml").write_text(problem_yaml)
    if timelimit is not None:
        (folder / ".timelimit").write_text(timelimit)
    return folder


def test_legacy_time_multiplier_sets_the_limit_from_the_slowest_accepted_run(tmp_path):
    problem = load_package(_package(tmp_path, "legacy", "limits:\n  time_multiplier: 3\n  time_safety_margin: 1.5\n"))
    assert problem.time_limit_s == DEFAULT_TIME_LIMIT_S  # nothing fixed it and loading runs no submission
    assert problem.metadata["time_limit_rule"] == {"source": "default", "ac_to_time_limit": 3.0,
                                              "time_limit_to_tle": 1.5, "time_resolution": 1.0}
    assert calibrated_time_limit(problem, 0.34).time_limit_s == 2.0  # 1.02 s rounded up to whole seconds
    assert calibrated_time_limit(problem, 0.01).time_limit_s == 1.0  # at least one step
    calibrated = calibrated_time_limit(problem, 0.5)
    assert calibrated.metadata["time_limit_rule"]["source"] == "accepted submissions" and problem.time_limit_s == 6.0
    legacy_defaults = load_package(_package(tmp_path, "plain", "name: Plain\n")).metadata["time_limit_rule"]
    assert (legacy_defaults["ac_to_time_limit"], legacy_defaults["time_limit_to_tle"]) == (5.0, 2.0)


def test_2023_time_multipliers_and_resolution(tmp_path):
    problem = load_package(_package(tmp_path, "new", """problem_format_version: 2023-07-draft
limits:
  time_multipliers:
    ac_to_time_limit: 1.5
    time_limit_to_tle: 2
  time_resolution: 0.1
"""))
    assert calibrated_time_limit(problem, 0.7).time_limit_s == 1.1  # 1.05 s rounded up to 0.1 s
    assert calibrated_time_limit(problem, 0.4).time_limit_s == 0.6  # exactly 6 steps, not 7 by float noise
    defaults = load_package(_package(tmp_path, "new_defaults", "problem_format_version: 2023-07\n"))
    rule = defaults.metadata["time_limit_rule"]
    assert (rule["ac_to_time_limit"], rule["time_limit_to_tle"]) == (2.0, 1.5)


def test_a_fixed_limit_wins_and_is_kept_by_calibration(tmp_path):
    from_yaml = load_package(_package(tmp_path, "yaml", "limits:\n  time_limit: 1.5\n  time_multiplier: 2\n"))
    assert (from_yaml.time_limit_s, from_yaml.metadata["time_limit_rule"]["source"]) == (1.5, "problem.yaml")
    assert calibrated_time_limit(from_yaml, 3.0).time_limit_s == 1.5
    both = load_package(_package(tmp_path, "both", "limits:\n  time_limit: 1.5\n", timelimit="0.5\n"))
    assert (both.time_limit_s, both.metadata["time_limit_rule"]["source"]) == (0.5, ".timelimit")


def test_bad_multipliers_and_foreign_problems_are_named(tmp_path):
    with pytest.raises(ProblemError, match="problem.yaml: limits.time_multiplier must be a positive number"):
        load_package(_package(tmp_path, "bad", "limits:\n  time_multiplier: -1\n"))
    with pytest.raises(ProblemError, match="no Kattis time limit rule"):
        calibrated_time_limit(stdio_problem(), 1.0)


def test_time_limit_scale_gives_a_slow_machine_more_time(tmp_path, judge_pool):
    problem = load_package(_package(tmp_path, "tight", "name: Tight\n", timelimit="0.2"))
    assert judge_pool.judge(problem, SLOW_SUM).verdict is Verdict.TLE
    with JudgePool(workers=1, time_limit_scale=5) as pool:
        result = pool.judge(problem, SLOW_SUM)
    assert result.verdict is Verdict.AC, result.detail


def test_service_applies_the_pool_settings_and_keeps_the_language_name():
    problem = stdio_problem(SUM_TESTS[:1], time_limit_s=0.2).to_dict()

    async def exchange(pool):
        async with TestClient(TestServer(create_app(pool, max_queue=2))) as client:
            health = await (await client.get("/health")).json()
            slow = await (await client.post("/judge", json={"problem": problem, "code": SLOW_SUM})).json()
            cpp20 = await (await client.post("/judge", json={"problem": problem, "code": CPP20_SUM,
                                                             "language": "c++20"})).json()
            unknown = await client.post("/judge", json={"problem": problem, "code": "", "language": "c++98"})
            return health, slow, cpp20, unknown.status, (await unknown.json())["error"]

    with JudgePool(workers=1, cpp_std="gnu++20", time_limit_scale=5) as pool:
        health, slow, cpp20, status, error = asyncio.run(exchange(pool))
    assert (health["cpp_std"], health["time_limit_scale"]) == ("gnu++20", 5)
    assert (slow["verdict"], cpp20["verdict"]) == ("AC", "AC")
    assert status == 400 and "unknown language 'c++98'" in error
