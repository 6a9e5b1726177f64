"""Checkers in testlib's command-line convention (`checker input output answer`; exit 0 accepted, 1 wrong,
2 presentation error and 7 partial points both wrong, 3 the checker's failure), through the pool API, beside
the Kattis convention; problems from the JSON schema."""
from pathlib import Path

import pytest

from judge.loaders.kattis import load_package
from judge.problem import Checker, Problem, ProblemError
from judge.verdict import Verdict
from judge_test_helpers import stdio_problem

KATTIS = Path(__file__).parent / "fixtures_formats" / "kattis"
PERMUTATION_TESTS = [("3 1 2\n", "1 2 3\n"), ("5 4\n", "4 5\n")]

# Accepts any permutation of the input's numbers; a first token PE / POINTS / FAIL / ODD asks for that exit.
# Called in any other way (output on stdin, a feedback folder) it fails, which the judge reports as SE.
PY_TESTLIB_CHECKER = """
import sys
if len(sys.argv) != 4 or sys.stdin.read():
    sys.exit(3)
input_file, output_file, answer_file = sys.argv[1:]
got = open(output_file).read().split()
assert sorted(open(answer_file).read().split()) == sorted(open(input_file).read().split())
exits = {"PE": 2, "POINTS": 7, "FAIL": 3, "ODD": 5}
if got[:1] and got[0] in exits:
    sys.exit(exits[got[0]])
sys.exit(0 if sorted(got) == sorted(open(answer_file).read().split()) else 1)
"""
CPP_TESTLIB_CHECKER = """
#include <algorithm>
#include <fstream>
#include <string>
#include <vector>
static std::vector<std::string> tokens(const char* path) {
    std::ifstream in(path);
    std::vector<std::string> all;
    for (std::string token; in >> token;) all.push_back(token);
    std::sort(all.begin(), all.end());
    return all;
}
int main(int argc, char** argv) {
    if (argc != 4) return 3;
    return tokens(argv[2]) == tokens(argv[3]) ? 0 : 1;
}
"""
# The part of testlib.h a checker uses, written here (testlib.h is not installed): registerTestlibCmd,
# the inf / ouf / ans streams and quitf with testlib's result codes.
MINI_TESTLIB_H = """
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
enum TResult { _ok = 0, _wa = 1, _pe = 2, _fail = 3, _dirt = 4, _points = 7 };
[[noreturn]] void quitf(TResult result, const char* format, ...) {
    va_list args;
    va_start(args, format);
    std::vfprintf(stderr, format, args);
    va_end(args);
    std::exit(result);
}
struct InStream {
    std::ifstream in;
    bool seekEof() { in >> std::ws; return in.peek() == EOF; }
    long long readLong() {
        long long value;
        if (!(in >> value)) quitf(_pe, "expected an integer");
        return value;
    }
};
InStream inf, ouf, ans;
void registerTestlibCmd(int argc, char* argv[]) {
    if (argc < 4) quitf(_fail, "usage: checker input output answer");
    inf.in.open(argv[1]);
    ouf.in.open(argv[2]);
    ans.in.open(argv[3]);
}
"""
SUM_CHECKER = """
#include "testlib.h"
int main(int argc, char* argv[]) {
    registerTestlibCmd(argc, argv);
    long long a = inf.readLong(), b = inf.readLong(), expected = ans.readLong();
    if (expected != a + b) quitf(_fail, "the answer file is wrong");
    if (ouf.seekEof()) quitf(_pe, "no output");
    long long got = ouf.readLong();
    if (got != expected) quitf(_wa, "expected %lld, got %lld", expected, got);
    if (!ouf.seekEof()) quitf(_pe, "extra output");
    quitf(_ok, "%lld", got);
}
"""
SUM_TESTS = [("1 2\n", "3\n"), ("10 -4\n", "6\n")]
READ_SUM = "a, b = map(int, input().split())\n"


def _verdicts(pool, problem, codes):
    return [r.verdict for r in pool.judge_many([(problem, code, "python") for code in codes])]


def test_python_testlib_checker_exit_codes(judge_pool):
    problem = stdio_problem(PERMUTATION_TESTS, checker=Checker("python", PY_TESTLIB_CHECKER, "testlib"))
    codes = ["print(*reversed(input().split()))", "print(1)", "print('PE')", "print('POINTS')", "print('FAIL')",
             "print('ODD')"]
    assert _verdicts(judge_pool, problem, codes) == [Verdict.AC, Verdict.WA, Verdict.WA, Verdict.WA, Verdict.SE,
                                                     Verdict.SE]


def test_the_same_checker_in_the_kattis_convention_is_a_checker_failure(judge_pool):
    # Kattis passes a feedback folder and the output on stdin: this checker refuses (3), and 3 is no Kattis verdict.
    problem = stdio_problem(PERMUTATION_TESTS, checker=Checker("python", PY_TESTLIB_CHECKER, "kattis"))
    assert judge_pool.judge(problem, "print(*input().split())").verdict is Verdict.SE


def test_cpp_testlib_checker_without_testlib_h(judge_pool):
    problem = stdio_problem(PERMUTATION_TESTS, checker=Checker("cpp", CPP_TESTLIB_CHECKER, "testlib"))
    verdicts = _verdicts(judge_pool, problem, ["print(*input().split())", "print(input().split()[0])"])
    assert verdicts == [Verdict.AC, Verdict.WA]


def test_cpp_checker_written_against_a_testlib_h_like_header(judge_pool):
    source = SUM_CHECKER.replace('#include "testlib.h"', MINI_TESTLIB_H)
    problem = stdio_problem(SUM_TESTS, checker=Checker("cpp", source, "testlib"))
    codes = [READ_SUM + "print(a + b)", READ_SUM + "print(a + b + 1)", READ_SUM, READ_SUM + "print(a + b, 0)"]
    # correct; wrong (_wa); no output and extra output (_pe): both wrong for the judge
    assert _verdicts(judge_pool, problem, codes) == [Verdict.AC, Verdict.WA, Verdict.WA, Verdict.WA]


def test_convention_comes_through_the_json_schema(judge_pool):
    row = {"id": "perm", "kind": "stdio", "tests": [{"input": i, "output": o} for i, o in PERMUTATION_TESTS],
           "checker": {"language": "python", "source": PY_TESTLIB_CHECKER, "convention": "testlib"}}
    problem = Problem.from_dict(row)
    assert problem.checker.convention == "testlib"
    assert Problem.from_dict(problem.to_dict()).checker == problem.checker
    assert judge_pool.judge(problem, "print(*reversed(input().split()))").verdict is Verdict.AC
    without = Problem.from_dict({**row, "checker": {"language": "python", "source": "import sys"}})
    assert without.checker.convention == "kattis"


def test_unknown_convention_is_refused_by_name():
    row = {"id": "perm", "kind": "stdio", "tests": [{"input": "1\n", "output": "1\n"}],
           "checker": {"language": "cpp", "source": "", "convention": "polygon"}}
    with pytest.raises(ProblemError, match=r"problem 'perm': checker convention must be one of .*'testlib'.*'polygon'"):
        Problem.from_dict(row, where="rows.jsonl:3")


def test_kattis_packages_keep_the_kattis_convention():
    assert load_package(KATTIS / "anyorder").checker.convention == "kattis"
