"""Custom output validators (Kattis contract: exit 42 accepted, 43 wrong answer)."""
import os
import shutil
from pathlib import Path

import psutil
import pytest

from judge.loaders import load_problems
from judge.problem import Checker
from judge.verdict import Verdict
from judge_test_helpers import ESCAPES_CPP, stdio_problem

SAMPLES = Path(__file__).resolve().parents[2] / "judge" / "samples"

# Accepts any permutation of the input's numbers, printed on one line.
PY_CHECKER = """
import sys
input_file, answer_file, feedback_dir = sys.argv[1:4]
expected = sorted(open(input_file).read().split())
got = sys.stdin.read().split()
open(feedback_dir + 'judgemessage.txt', 'w').write('checked')
sys.exit(42 if sorted(got) == expected else 43)
"""
CPP_CHECKER = """
#include <algorithm>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>
int main(int argc, char** argv) {
    std::ifstream in(argv[1]);
    std::vector<std::string> expected, got;
    std::string token;
    while (in >> token) expected.push_back(token);
    while (std::cin >> token) got.push_back(token);
    std::sort(expected.begin(), expected.end());
    std::sort(got.begin(), got.end());
    return expected == got ? 42 : 43;
}
"""
PERMUTATION_TESTS = [("3 1 2\n", "1 2 3\n"), ("5 4\n", "4 5\n")]


def test_python_checker_accepts_any_valid_output(judge_pool):
    problem = stdio_problem(PERMUTATION_TESTS, checker=Checker("python", PY_CHECKER))
    reversed_order = "print(*reversed(input().split()))\n"
    assert judge_pool.judge(problem, reversed_order).verdict is Verdict.AC
    assert judge_pool.judge(problem, "print(1, 2, 3)\n").verdict is Verdict.WA


def test_cpp_checker_is_compiled_and_used(judge_pool):
    problem = stdio_problem(PERMUTATION_TESTS, checker=Checker("cpp", CPP_CHECKER))
    assert judge_pool.judge(problem, "print(*input().split())\n").verdict is Verdict.AC
    assert judge_pool.judge(problem, "print(input().split()[0])\n").verdict is Verdict.WA


def test_broken_checker_is_a_system_error_not_a_wrong_answer(judge_pool):
    problem = stdio_problem(PERMUTATION_TESTS, checker=Checker("python", "import sys\nsys.exit(1)\n"))
    assert judge_pool.judge(problem, "print(*input().split())\n").verdict is Verdict.SE
    uncompilable = stdio_problem(PERMUTATION_TESTS, checker=Checker("cpp", "int main( {"))
    assert judge_pool.judge(uncompilable, "print(*input().split())\n").verdict is Verdict.SE


def test_kattis_sample_package_with_output_validator(judge_pool):
    [problem] = load_problems(SAMPLES / "pair_sum")
    assert problem.checker is not None
    other_pair = (SAMPLES / "solutions" / "pair_sum" / "accepted_other_pair.py").read_text()
    assert judge_pool.judge(problem, other_pair).verdict is Verdict.AC
    wrong = judge_pool.judge(problem, (SAMPLES / "solutions" / "pair_sum" / "wrong.py").read_text())
    assert wrong.verdict is Verdict.WA and wrong.passed >= 1


# The C++ checker above, which first looks at what it could do beyond its folder (ESCAPES_CPP); 1 (SE) when
# it could do any.
CONFINED_CPP_CHECKER = ESCAPES_CPP + CPP_CHECKER.replace("int main(int argc, char** argv) {",
                        "int main(int argc, char** argv) {\n    if (escaped(argv[0])) return 1;")


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                    reason="the checker's own user and network need root and unshare")
def test_the_checker_is_sandboxed(judge_pool):
    assert "escaped(argv[0])" in CONFINED_CPP_CHECKER
    problem = stdio_problem(PERMUTATION_TESTS, checker=Checker("cpp", CONFINED_CPP_CHECKER))
    result = judge_pool.judge(problem, "print(*input().split())\n")
    assert result.verdict is Verdict.AC, "the checker could reach beyond its folder (or failed)"
    assert judge_pool.judge(problem, "print(input().split()[0])\n").verdict is Verdict.WA


def test_a_checker_that_hangs_is_se_and_its_group_is_ended(judge_pool, monkeypatch):
    # A checker's children die with it (its session is killed), not only the checker itself.
    from judge import checker as checkers

    hangs = ("import subprocess, sys, time\n"
             "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)  # mc-orphan'])\n"
             "time.sleep(600)\n")
    problem = stdio_problem(PERMUTATION_TESTS[:1], time_limit_s=1.0, checker=Checker("python", hangs))
    monkeypatch.setattr(checkers, "CHECKER_MIN_TIME_S", 1.0)  # the checker's timeout: 2 s
    assert judge_pool.judge(problem, "print(*input().split())\n").verdict is Verdict.SE
    left = [p for p in psutil.process_iter(["cmdline"]) if "# mc-orphan" in " ".join(p.info["cmdline"] or [])]
    for process in left:
        process.kill()
    assert left == [], "the checker's child was left running"


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                    reason="the checker's own user and network need root and unshare")
def test_a_python_checker_is_sandboxed(judge_pool):
    from tests.judge.test_interactive import ESCAPES_PY

    problem = stdio_problem(PERMUTATION_TESTS, checker=Checker("python", ESCAPES_PY + PY_CHECKER))
    assert judge_pool.judge(problem, "print(*reversed(input().split()))\n").verdict is Verdict.AC
    assert judge_pool.judge(problem, "print(1, 2, 3)\n").verdict is Verdict.WA
