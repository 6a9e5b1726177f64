"""Correct Python programs in every input/output style that LiveCodeBench's grader wrongly rejects must
be accepted; wrong and cheating ones must not."""
import pytest

from judge.verdict import Verdict
from judge_test_helpers import stdio_problem

ACCEPTED = {
    "input": "a, b = map(int, input().split())\nprint(a + b)\n",
    "for_line_in_stdin": "import sys\nfor line in sys.stdin:\n    a, b = map(int, line.split())\n    print(a + b)\n",
    "open_0": "a, b = map(int, open(0).read().split())\nprint(a + b)\n",
    "os_read_0": "import os\na, b = map(int, os.read(0, 1 << 16).split())\nprint(a + b)\n",
    "stdin_buffer_readline": "import sys\na, b = map(int, sys.stdin.buffer.readline().split())\nprint(a + b)\n",
    "stdout_buffer_write": "import sys\na, b = map(int, input().split())\nsys.stdout.buffer.write(b'%d\\n' % (a + b))\n",
    "os_write_1": "import os\na, b = map(int, input().split())\nos.write(1, f'{a + b}\\n'.encode())\n",
    "quit": "a, b = map(int, input().split())\nprint(a + b)\nquit()\nprint('not reached')\n",
    "exit": "a, b = map(int, input().split())\nprint(a + b)\nexit()\n",
    "sys_exit_0_flushes": "import sys\na, b = map(int, input().split())\nprint(a + b)\nsys.exit(0)\n",
    "sys_exit_in_function": "import sys\ndef main():\n    print(sum(map(int, input().split())))\n    sys.exit()\nmain()\n",
    "global": "total = 0\ndef add(x):\n    global total\n    total += x\nfor t in input().split():\n    add(int(t))\nprint(total)\n",
    "future_import": "from __future__ import annotations\nimport sys\ndef f(x: int) -> int:\n    return x\nprint(f(sum(map(int, sys.stdin.read().split()))))\n",
    "main_guard_not_at_end": "def solve():\n    return 0\nif __name__ == '__main__':\n    print(solve())\ndef later():\n    return 'done'\nprint(later())\n",
    "main_guard_at_top_with_later_def": "import sys\nif __name__ == \"__main__\":\n    a, b = map(int, sys.stdin.readline().split())\n    print(a + b)\n",
    "typing_names_without_import": "def f(xs: List[int]) -> Optional[int]:\n    return sum(xs)\nprint(f(list(map(int, input().split()))))\n",
    "numpy": "import numpy as np\nprint(int(np.array(input().split(), dtype=np.int64).sum()))\n",
    "threads": "import threading\nout = []\nt = threading.Thread(target=lambda: out.append(sum(map(int, input().split()))))\nt.start(); t.join()\nprint(out[0])\n",
    "dataclass_in_main": "from dataclasses import dataclass\n@dataclass\nclass P:\n    a: int\n    b: int\np = P(*map(int, input().split()))\nprint(p.a + p.b)\n",
    "deep_recursion": "import sys\nsys.setrecursionlimit(10**6)\ndef f(n):\n    return 0 if n == 0 else 1 + f(n - 1)\na, b = map(int, input().split())\nprint(a + b + f(20000) - 20000)\n",
    "writes_scratch_file": "a, b = map(int, input().split())\nopen('tmp.txt', 'w').write(str(a + b))\nprint(open('tmp.txt').read())\n",
}

# "main_guard_not_at_end" reads nothing and is judged on its own problem.
_SPECIAL = {"main_guard_not_at_end": [("\n", "0\ndone\n")]}


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_correct_program_in_every_style_is_accepted(judge_pool, name):
    problem = stdio_problem(_SPECIAL.get(name, [("1 2\n", "3\n"), ("10 -4\n", "6\n"), ("5 5\n", "10\n")]))
    result = judge_pool.judge(problem, ACCEPTED[name], "python")
    assert result.verdict is Verdict.AC, result.to_dict()
    assert result.passed == result.total == len(problem.tests)


def test_large_input_and_output_go_through_the_pipes(judge_pool):
    n = 200_000
    numbers = " ".join(str(i) for i in range(n))
    expected = "\n".join(str(2 * i) for i in range(n)) + "\n"
    code = "import sys\nprint('\\n'.join(str(2 * int(t)) for t in sys.stdin.read().split()))\n"
    assert judge_pool.judge(stdio_problem([(numbers + "\n", expected)]), code).verdict is Verdict.AC


@pytest.mark.parametrize("code, verdict", [
    ("a, b = map(int, input().split())\nprint(a - b)\n", Verdict.WA),
    ("print(3)\n", Verdict.WA),  # right on the first test only
    ("a, b = map(int, input().split())\nprint(a + b)\nraise SystemExit(1)\n", Verdict.RE),
    ("import sys\nprint(sum(map(int, input().split())))\nsys.exit('failed')\n", Verdict.RE),
    ("def f(:\n", Verdict.CE),
    ("print(undefined_name)\n", Verdict.RE),
])
def test_wrong_programs_fail(judge_pool, code, verdict):
    result = judge_pool.judge(stdio_problem([("1 2\n", "3\n"), ("10 -4\n", "6\n")]), code)
    assert result.verdict is verdict, result.to_dict()


def test_output_of_a_crashing_program_is_not_accepted_even_if_printed_first(judge_pool):
    code = "print(3)\nimport os\nos.abort()\n"
    assert judge_pool.judge(stdio_problem([("1 2\n", "3\n")]), code).verdict is Verdict.RE
