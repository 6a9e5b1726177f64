"""Two things a correct Python program does that a judge easily misses, and their neighbours:
- it ends the way CPython ends a process: non-daemon threads waited for, atexit handlers run, buffered
  writers flushed (whatever wrote to them), within the time limit;
- its function returns values that are not plain JSON (numpy, Decimal, Fraction, sets, tuples), which the
  child turns into plain values, while objects that fake equality stay wrong answers."""
from decimal import Decimal

import pytest

from judge.compare import values_match
from judge.problem import Comparison
from judge.verdict import Verdict
from judge_test_helpers import function_problem, stdio_problem

SUMS = [("1 2\n", "3\n"), ("10 -4\n", "6\n")]

DEEP_RECURSION_IN_AN_UNJOINED_THREAD = """
import sys, threading
threading.stack_size(1 << 26)
sys.setrecursionlimit(1 << 20)
def depth(n):
    return 0 if n == 0 else 1 + depth(n - 1)
def main():
    a, b = map(int, input().split())
    print(a + b + depth(100000) - 100000)
threading.Thread(target=main).start()
"""

# PyRival's fast-I/O template, as thousands of Codeforces solutions start: it reads `sys.stdout.mode`, and
# its output leaves only when Python flushes sys.stdout at exit.
PYRIVAL_FASTIO = """
import os, sys
from io import BytesIO, IOBase
BUFSIZE = 8192
class FastIO(IOBase):
    newlines = 0
    def __init__(self, file):
        self._fd = file.fileno()
        self.buffer = BytesIO()
        self.writable = "x" in file.mode or "r" not in file.mode
        self.write = self.buffer.write if self.writable else None
    def readline(self):
        while self.newlines == 0:
            b = os.read(self._fd, max(os.fstat(self._fd).st_size, BUFSIZE))
            self.newlines = b.count(b"\\n") + (not b)
            ptr = self.buffer.tell()
            self.buffer.seek(0, 2), self.buffer.write(b), self.buffer.seek(ptr)
        self.newlines -= 1
        return self.buffer.readline()
    def flush(self):
        if self.writable:
            os.write(self._fd, self.buffer.getvalue())
            self.buffer.truncate(0), self.buffer.seek(0)
class IOWrapper(IOBase):
    def __init__(self, file):
        self.buffer = FastIO(file)
        self.flush = self.buffer.flush
        self.writable = self.buffer.writable
        self.write = lambda s: self.buffer.write(s.encode("ascii"))
        self.readline = lambda: self.buffer.readline().decode("ascii")
sys.stdin, sys.stdout = IOWrapper(sys.stdin), IOWrapper(sys.stdout)
input = lambda: sys.stdin.readline().rstrip("\\r\\n")
a, b = map(int, input().split())
print(a + b)
"""

READ = "import sys\na, b = map(int, sys.stdin.readline().split())\n"

ENDS_LIKE_CPYTHON = {
    "unjoined_thread_with_deep_recursion": DEEP_RECURSION_IN_AN_UNJOINED_THREAD,
    "unjoined_thread_that_starts_another": READ + (
        "import threading\ndef inner():\n    print(a + b)\n"
        "threading.Thread(target=lambda: threading.Thread(target=inner).start()).start()\n"),
    "main_thread_exits_before_its_thread_prints": READ + (
        "import threading, time\ndef late():\n    time.sleep(0.05)\n    print(a + b)\n"
        "threading.Thread(target=late).start()\nsys.exit(0)\n"),
    "sys_exit_0_in_a_thread_ends_only_that_thread": READ + (
        "import threading\ndef stop():\n    sys.exit(0)\nt = threading.Thread(target=stop)\nt.start(); t.join()\n"
        "print(a + b)\n"),
    "unjoined_thread_prints_then_sys_exit": READ + (
        "import threading\ndef work():\n    print(a + b)\n    sys.exit(0)\nthreading.Thread(target=work).start()\n"),
    "atexit_handler_prints": READ + "import atexit\natexit.register(print, a + b)\n",
    "stringio_written_out_by_atexit": READ + (
        "import atexit, io\nbuf = io.StringIO()\nprint(a + b, file=buf)\n"
        "atexit.register(lambda: sys.__stdout__.write(buf.getvalue()))\n"),
    "stdout_replaced_by_stringio_and_written_at_the_end": READ + (
        "import io\nsys.stdout = io.StringIO()\nprint(a + b)\nsys.__stdout__.write(sys.stdout.getvalue())\n"),
    "buffered_writer_on_fd_1_never_flushed": READ + (
        "import io\nout = io.BufferedWriter(io.FileIO(1, 'w', closefd=False), 1 << 16)\n"
        "out.write(b'%d\\n' % (a + b))\n"),
    "sys_stdout_buffer_never_flushed": READ + "sys.stdout.buffer.write(str(a + b).encode() + b'\\n')\n",
    "text_wrapper_on_fd_1_never_flushed": READ + (
        "import io\nout = io.TextIOWrapper(open(1, 'wb', closefd=False))\nout.write(f'{a + b}\\n')\n"),
    "writer_held_by_a_global_object": READ + (
        "import io\nclass Out:\n    def __init__(self):\n"
        "        self.w = io.BufferedWriter(io.FileIO(1, 'w', closefd=False))\n"
        "out = Out()\nout.w.write(b'%d\\n' % (a + b))\n"),
    # The lambda holds the wrapper that holds it: only the garbage collector frees it, and flushes it.
    "writer_in_a_reference_cycle": READ + (
        "import os\nfrom io import BytesIO, IOBase\nclass Out(IOBase):\n    def __init__(self):\n"
        "        self.buffer = BytesIO()\n        self.write = lambda s: self.buffer.write(s.encode())\n"
        "    def flush(self):\n        os.write(1, self.buffer.getvalue())\n        self.buffer = BytesIO()\n"
        "out = Out()\nout.write(f'{a + b}\\n')\n"),
    "finalizer_of_a_global_prints": READ + (
        "class Bye:\n    def __init__(self, v):\n        self.v = v\n    def __del__(self):\n        print(self.v)\n"
        "bye = Bye(a + b)\n"),
    # typing caches List[Node], Node's method holds the globals: they outlive __main__ and are cleared.
    "finalizer_of_a_global_kept_by_a_typing_cache_prints": READ + (
        "from typing import List\nclass Node:\n    def m(self):\n        pass\ndef f(x: List[Node]):\n    pass\n"
        "class Bye:\n    def __init__(self, v):\n        self.v = v\n    def __del__(self):\n        print(self.v)\n"
        "bye = Bye(a + b)\n"),
    "sys_stdout_rebound_to_a_big_buffer": READ + (
        "sys.stdout = open(1, 'w', buffering=1 << 20, closefd=False)\nprint(a + b)\n"),
    "pyrival_fast_io": PYRIVAL_FASTIO,
    "os_write_1": READ + "import os\nos.write(1, b'%d\\n' % (a + b))\n",
    "sys_exit_after_printing": READ + "print(a + b)\nsys.exit()\n",
    "exit_after_printing": READ + "print(a + b)\nexit()\n",
    "os_exit_0_after_a_flushed_print": READ + "import os\nprint(a + b, flush=True)\nos._exit(0)\n",
}


@pytest.mark.parametrize("name", sorted(ENDS_LIKE_CPYTHON))
def test_program_that_ends_with_output_pending_is_judged_on_that_output(judge_pool, name):
    result = judge_pool.judge(stdio_problem(SUMS), ENDS_LIKE_CPYTHON[name])
    assert result.verdict is Verdict.AC, result.to_dict()


@pytest.mark.parametrize("code, verdict", [
    # CPython loses what print buffered when os._exit skips the flush: so does the judge.
    (READ + "import os\nprint(a + b)\nos._exit(0)\n", Verdict.WA),
    # Daemon threads are not waited for.
    (READ + "import threading, time\ndef late():\n    time.sleep(0.3)\n    print(a + b)\n"
     "threading.Thread(target=late, daemon=True).start()\n", Verdict.WA),
    (READ + "print(a + b)\nraise SystemExit('giving up')\n", Verdict.RE),
    # The main thread failed: exit status 1 even though its thread printed the answer.
    (READ + "import threading\nthreading.Thread(target=lambda: print(a + b)).start()\nraise ValueError\n",
     Verdict.RE),
    # An exception in a thread is printed and does not change the exit status: the output decides.
    (READ + "import threading\nthreading.Thread(target=lambda: 1 / 0).start()\nprint(a + b)\n", Verdict.AC),
])
def test_exit_status_and_lost_output_as_cpython_has_them(judge_pool, code, verdict):
    result = judge_pool.judge(stdio_problem(SUMS), code)
    assert result.verdict is verdict, result.to_dict()


def test_system_exit_message_goes_to_stderr(judge_pool):
    result = judge_pool.judge(stdio_problem(SUMS), READ + "print(a + b)\nraise SystemExit('giving up')\n")
    assert "giving up" in result.detail


def test_a_thread_that_runs_past_the_time_limit_is_tle(judge_pool):
    code = READ + (
        "import threading\ndef spin():\n    while True:\n        pass\n"
        "print(a + b)\nthreading.Thread(target=spin).start()\n")
    result = judge_pool.judge(stdio_problem(SUMS, time_limit_s=1.0), code)
    assert result.verdict is Verdict.TLE, result.to_dict()


def test_atexit_handlers_of_one_test_do_not_reach_the_next(judge_pool):
    # Every test's child starts from the zygote, which never ran the submission: one handler each.
    code = READ + "import atexit\natexit.register(print, a + b)\n"
    result = judge_pool.judge(stdio_problem(SUMS + [("5 5\n", "10\n")]), code)
    assert result.verdict is Verdict.AC and result.passed == 3, result.to_dict()


# ---- function-call results ---------------------------------------------------------------------------

def _returns(expression: str, imports: str = "") -> str:
    return f"{imports}\nclass Solution:\n    def f(self, x):\n        return {expression}\n"


NUMPY = "import numpy as np"


@pytest.mark.parametrize("expression, expected", [
    ("np.int64(x) * 2", "8"),
    ("np.float64(x) / 3", "1.3333333333"),
    ("np.float32(x) / 8", "0.5"),
    ("np.bool_(x > 3)", "true"),
    ("np.arange(x)", "[0, 1, 2, 3]"),
    ("np.arange(x).reshape(2, 2)", "[[0, 1], [2, 3]]"),
    ("[np.int64(x), [np.float64(0.5), np.bool_(False)], np.array([x, x])]", "[4, [0.5, false], [4, 4]]"),
    ("np.int64(x) * 10**9 * np.int64(10**9)", "4000000000000000000"),
    ("{'k': np.int32(x)}", '{"k": 4}'),
])
def test_numpy_results_equal_to_the_expected_plain_values_are_accepted(judge_pool, expression, expected):
    result = judge_pool.judge(function_problem("f", [("4", expected)]), _returns(expression, NUMPY))
    assert result.verdict is Verdict.AC, result.to_dict()


@pytest.mark.parametrize("code", [
    _returns("np.int64(x) + 1", NUMPY),
    _returns("np.bool_(True)", NUMPY),  # a boolean is not the number 8
    _returns("np.array([8, 0])", NUMPY),
    # numpy imported, so the child's numpy conversion is live: equality claims still do not travel
    NUMPY + "\nclass Eq:\n    def __eq__(self, other):\n        return True\n" + _returns("Eq()"),
    NUMPY + "\nclass Eq(int):\n    def __eq__(self, other):\n        return True\n" + _returns("Eq(7)"),
    NUMPY + "\nclass Eq(np.ndarray):\n    def __eq__(self, other):\n        return True\n"
    + _returns("np.array([7]).view(Eq)"),
    NUMPY + "\nclass Eq(list):\n    def __eq__(self, other):\n        return True\n" + _returns("Eq([np.int64(7)])"),
])
def test_wrong_numpy_results_and_fake_equality_stay_wrong(judge_pool, code):
    result = judge_pool.judge(function_problem("f", [("4", "8")]), code)
    assert result.verdict is Verdict.WA, result.to_dict()


# CPython refuses int <-> str conversions past 4300 digits by default; a correct huge answer must not be lost.
HUGE = str(Decimal(7 ** 12000))  # its 10142 digits (str() of the int itself would refuse)


@pytest.mark.parametrize("expression, expected, verdict", [
    ("7 ** (3000 * x)", str(HUGE), Verdict.AC),
    ("7 ** (3000 * x) + 1", str(HUGE), Verdict.WA),
    ("[7 ** (3000 * x), x]", f"[{HUGE}, 4]", Verdict.AC),
])
def test_function_results_past_4300_digits_are_numbers_like_any_other(judge_pool, expression, expected, verdict):
    result = judge_pool.judge(function_problem("f", [("4", expected)]), _returns(expression))
    assert result.verdict is verdict, result.to_dict()


def test_a_program_printing_a_number_past_4300_digits_is_judged_on_it(judge_pool):
    problem = stdio_problem([("12000\n", f"{HUGE}\n")])
    assert judge_pool.judge(problem, "print(7 ** int(input()))\n").verdict is Verdict.AC
    assert judge_pool.judge(problem, "print(7 ** int(input()) - 1)\n").verdict is Verdict.WA


EXACT = "from decimal import Decimal\nfrom fractions import Fraction"


@pytest.mark.parametrize("expression, expected, verdict", [
    ("Decimal('0.1') * x", "0.4", Verdict.AC),
    ("Decimal(x) / 3", "1.33333333333", Verdict.AC),
    ("Decimal(10 ** 30 * x)", "4000000000000000000000000000000", Verdict.AC),  # integral: an exact int
    ("Decimal(10 ** 30 * x + 1)", "4000000000000000000000000000000", Verdict.WA),
    ("Decimal('0.1') * x", "0.5", Verdict.WA),
    ("Fraction(x, 3)", "1.3333333333", Verdict.AC),
    ("Fraction(2 * x, 2)", "4", Verdict.AC),
    ("[Fraction(1, x), Decimal('-0.25')]", "[0.25, -0.25]", Verdict.AC),
    ("Fraction(1, x)", "0.2", Verdict.WA),
])
def test_decimal_and_fraction_compare_as_numbers(judge_pool, expression, expected, verdict):
    result = judge_pool.judge(function_problem("f", [("4", expected)]), _returns(expression, EXACT))
    assert result.verdict is verdict, result.to_dict()


ANY_ORDER = Comparison(unordered=True)


@pytest.mark.parametrize("expression, expected, comparison, verdict", [
    ("{x, 1, 2}", "[1, 2, 4]", Comparison(), Verdict.AC),  # its elements in sorted order
    ("{x, 1, 2}", "[4, 2, 1]", Comparison(), Verdict.WA),  # a set has no order to match this one
    ("{x, 1, 2}", "[4, 2, 1]", ANY_ORDER, Verdict.AC),
    ("frozenset({'b', 'a'})", '["b", "a"]', ANY_ORDER, Verdict.AC),
    ("{x, 1}", "[1, 1, 4]", ANY_ORDER, Verdict.WA),  # a set cannot hold the duplicate
    ("[x, 1, 2]", "[2, 4, 1]", ANY_ORDER, Verdict.AC),
    ("[x, 1, 2]", "[2, 4, 1]", Comparison(), Verdict.WA),
    ("{(1, 2), (x, 3)}", "[[1, 2], [4, 3]]", Comparison(), Verdict.AC),  # tuples inside a set
    ("{1, 'a', x}", '[1, 4, "a"]', ANY_ORDER, Verdict.AC),  # elements of mixed kinds
    ("{'b': x, 'a': 1}", '{"a": 1, "b": 4}', Comparison(), Verdict.AC),  # dict key order is irrelevant
    ("{'a': 1}", '{"a": 1, "b": 4}', Comparison(), Verdict.WA),
    ("((1, (x,)), (2,))", "[[1, [4]], [2]]", Comparison(), Verdict.AC),  # nested tuples are lists
    ("-0.0 * x", "0.0", Comparison(), Verdict.AC),
    ("-0.0", "0", Comparison(), Verdict.AC),
    ("float('nan')", "NaN", Comparison(), Verdict.AC),  # NaN equals an expected NaN
    ("float('nan')", "4.0", Comparison(), Verdict.WA),  # and nothing else
    ("4.0", "NaN", Comparison(), Verdict.WA),
    ("x == 4", "true", Comparison(), Verdict.AC),
    ("int(x == 4)", "true", Comparison(), Verdict.WA),  # LeetCode's true is not 1
    ("x == 4", "1", Comparison(), Verdict.WA),  # nor is 1 true
    ("2 ** 300 + x", str(2 ** 300 + 4), Comparison(), Verdict.AC),
    ("2 ** 300 + x", str(2 ** 300 + 5), Comparison(), Verdict.WA),  # ints exact, however large
])
def test_python_value_types_compare_as_documented(judge_pool, expression, expected, comparison, verdict):
    problem = function_problem("f", [("4", expected)], comparison=comparison)
    result = judge_pool.judge(problem, _returns(expression))
    assert result.verdict is verdict, result.to_dict()


def test_unordered_values_pair_within_tolerance_where_sorting_misleads():
    assert values_match([1.0, 2, "x"], ["x", 2.0000001, 0.9999999], ANY_ORDER)
    # Sorted by their text, [1.0, "b"] meets [1.0, "a"]: only the exact matching pairs them within tolerance.
    assert values_match([[1.0, "b"], [1.0000001, "a"]], [[1.0000001, "b"], [1.0, "a"]], ANY_ORDER)
    assert not values_match([[1.0, "b"], [1.0000001, "a"]], [[1.1, "b"], [1.0, "a"]], ANY_ORDER)
    assert values_match([[2, 1], [1, 2]], [[1, 2], [2, 1]], ANY_ORDER)
    assert not values_match([[2, 1]], [[1, 2]], ANY_ORDER)  # only the top level is unordered
    assert not values_match([1, 2], [2, 1, 1], ANY_ORDER)
    assert values_match([[3, 1]], [1, 3], Comparison(unordered=True, accept_unwrapped_singleton=True))
    assert values_match([10**400, -(10**400), 1], [1, -(10**400), 10**400], ANY_ORDER)  # beyond float range
