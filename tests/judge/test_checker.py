"""Custom output validators (Kattis contract: exit 42 accepted, 43 wrong answer)."""
from pathlib import Path

from judge.loaders import load_problems
from judge.problem import Checker
from judge.verdict import Verdict
from judge_test_helpers import stdio_problem

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
