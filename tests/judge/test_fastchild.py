"""The C path for test children (judge/_fastchild.c) against the Python path it replaces: the extension is
built by the install, the zygote uses it unless told not to (MC_JUDGE_FASTCHILD=0), and both paths give the
same verdicts and outcomes on the same programs (test_hostile.py runs its programs on both too)."""
import os
import shutil
import subprocess
import sys

import pytest

from judge import executor
from judge.pool import JudgePool
from judge.runner import judge_on
from judge.verdict import Verdict
from judge.zygote import Zygote
from judge_test_helpers import function_problem, stdio_problem

needs_gpp = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")


def _zygote(fast: bool) -> Zygote:
    saved = os.environ.get("MC_JUDGE_FASTCHILD")
    os.environ["MC_JUDGE_FASTCHILD"] = "1" if fast else "0"
    try:
        return Zygote()
    finally:
        if saved is None:
            del os.environ["MC_JUDGE_FASTCHILD"]
        else:
            os.environ["MC_JUDGE_FASTCHILD"] = saved


@pytest.fixture(scope="module")
def zygotes():
    fast, python = _zygote(True), _zygote(False)
    yield {"C": fast, "Python": python}
    fast.close()
    python.close()


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="no C compiler")
def test_the_install_builds_the_extension_and_the_zygote_uses_it(zygotes):
    assert executor._fastchild is not None, "judge/_fastchild.c was not built (pip install -e . builds it)"
    assert zygotes["C"].info["fast_path"] is True
    assert zygotes["Python"].info["fast_path"] is False


def test_without_the_extension_the_zygote_takes_the_python_path(monkeypatch):
    monkeypatch.setattr(executor, "_fastchild", None)
    assert executor.fast_path_available() is False


def test_only_a_single_threaded_process_takes_the_c_path():
    if executor._fastchild is None:
        pytest.skip("extension not built")
    check = ("import threading\nfrom judge.executor import fast_path_available\nalone = fast_path_available()\n"
             "stop = threading.Event()\nthread = threading.Thread(target=stop.wait)\nthread.start()\n"
             "print(alone, fast_path_available())\nstop.set()\nthread.join()\n")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, cwd=repo, timeout=60,
                          env={k: v for k, v in os.environ.items() if k != "MC_JUDGE_FASTCHILD"})
    assert done.stdout.split() == ["True", "False"], done.stderr


# (name, code, input, expected output): each run on both paths; verdicts and outcomes must agree.
PROGRAMS = [
    ("correct", "a, b = map(int, input().split())\nprint(a + b)\n", "1 2\n", "3\n"),
    ("wrong", "print(0)\n", "1 2\n", "3\n"),
    ("runtime_error", "raise ValueError('boom')\n", "", "3\n"),
    ("exit_code", "import sys\nprint(3)\nsys.exit(7)\n", "", "3\n"),
    ("syntax_error", "print(\n", "", "3\n"),
    ("spin", "while True:\n    pass\n", "", "3\n"),
    ("sleep", "import time\ntime.sleep(30)\n", "", "3\n"),
    ("memory", "x = bytearray(4 << 30)\n", "", "3\n"),
    ("endless_output", "import os\nwhile True:\n    os.write(1, b'3' * 65536)\n", "", "3\n"),
    ("fork", "import os\nos.fork()\nprint(3)\n", "", "3\n"),
    ("big_input", "import sys\nprint(len(sys.stdin.buffer.read()))\n", "x" * (3 << 20), f"{3 << 20}\n"),
    ("ignores_input", "print(3)\n", "y" * (3 << 20), "3\n"),
    ("stderr_noise", "import sys\nsys.stderr.write('e' * 100000)\nprint(3)\n", "", "3\n"),
    ("thread_finishes", "import threading\nthreading.Thread(target=lambda: print(3)).start()\n", "", "3\n"),
    ("atexit", "import atexit\natexit.register(print, 3)\n", "", "3\n"),
    ("unflushed_writer", "import io, sys\nw = io.BufferedWriter(io.FileIO(1, 'w', closefd=False))\nw.write(b'3\\n')\n",
     "", "3\n"),
    ("leaves_files", "import os\nos.makedirs('a/b')\nopen('a/b/c', 'w').write('x')\nprint(3)\n", "", "3\n"),
    ("no_input_at_all", "print(3)\n", "", "3\n"),
]


@pytest.mark.parametrize("name, code, stdin, expected", PROGRAMS, ids=[p[0] for p in PROGRAMS])
def test_both_paths_agree(zygotes, name, code, stdin, expected):
    problem = stdio_problem([(stdin, expected)], time_limit_s=0.5)
    results = {path: judge_on(z, problem, code, "python") for path, z in zygotes.items()}
    assert results["C"].verdict == results["Python"].verdict, {k: r.to_dict() for k, r in results.items()}
    assert (results["C"].verdict is Verdict.AC) == (name in {"correct", "big_input", "ignores_input", "stderr_noise",
                                                               "thread_finishes", "atexit", "unflushed_writer",
                                                               "leaves_files", "no_input_at_all"})
    assert results["C"].detail == results["Python"].detail


@pytest.mark.parametrize("path", ["C", "Python"])
def test_outcome_fields(zygotes, path):
    from judge.sandbox import Limits

    zygote = zygotes[path]
    limits = Limits(1.0, 256)
    code = "import sys\nprint(input()[::-1])\nsys.stderr.write('err')\nsys.exit(3)\n"
    assert zygote.load("python", "stdio", None, code, limits) == ("ok", "")
    try:
        first = zygote.run(b"abc\n", limits.wall_limit_s, more_tests_follow=True)
        second = zygote.run(b"xyz\n", limits.wall_limit_s)
    finally:
        zygote.unload()
    for outcome, text in ((first, b"cba\n"), (second, b"zyx\n")):
        assert outcome.ready and not outcome.timed_out and not outcome.output_exceeded
        assert (outcome.exit_code, outcome.signal) == (3, None)
        assert (outcome.stdout, outcome.stderr, outcome.payload) == (text, b"err", b"")
        assert 0 < outcome.wall_s < limits.wall_limit_s and outcome.cpu_s >= 0


@pytest.mark.parametrize("path", ["C", "Python"])
def test_no_working_folder_is_left_behind(zygotes, path):
    zygote = zygotes[path]
    problem = stdio_problem([("", "3\n")] * 3)
    code = "import os\nos.makedirs('d/e')\nopen('d/e/f', 'w').write('x')\nprint(3)\n"
    assert judge_on(zygote, problem, code, "python").verdict is Verdict.AC
    # stopped early: the child forked ahead for the next test is discarded, its folder too
    assert judge_on(zygote, problem, "print(4)\n", "python").verdict is Verdict.WA
    # seen through the zygote's root, which is in its private mount namespace when the judge is root
    assert os.listdir(f"/proc/{zygote.info['pid']}/root{zygote.info['scratch']}") == []


@pytest.mark.parametrize("path", ["C", "Python"])
def test_removing_a_working_folder_never_follows_a_link_out_of_it(zygotes, path):
    # The zygote removes a test's folder as root: a link the program left there (to a folder it could never
    # write itself) must go as a link. The C path walks by descriptors with O_NOFOLLOW, so a folder swapped
    # for such a link during the removal cannot redirect it either.
    zygote = zygotes[path]
    outside = f"/proc/{zygote.info['pid']}/root/tmp/mc-judge-canary-{path}"
    os.makedirs(outside, exist_ok=True)
    open(f"{outside}/keep", "w").close()
    try:
        code = (f"import os\nos.makedirs('d/e')\nopen('d/e/f', 'w').write('x')\n"
                f"os.symlink('/tmp/mc-judge-canary-{path}', 'd/link')\nos.symlink('/tmp/mc-judge-canary-{path}', 'top')\n"
                f"print(3)\n")
        assert judge_on(zygote, stdio_problem([("", "3\n")]), code, "python").verdict is Verdict.AC
        assert os.listdir(outside) == ["keep"]
        assert os.listdir(f"/proc/{zygote.info['pid']}/root{zygote.info['scratch']}") == []
    finally:
        shutil.rmtree(outside, ignore_errors=True)


@pytest.mark.parametrize("path", ["C", "Python"])
def test_function_problems_on_both_paths(zygotes, path):
    problem = function_problem("add", [("1\n2", "3"), ("5\n-5", "0")])
    code = "class Solution:\n    def add(self, a, b):\n        return a + b\n"
    assert judge_on(zygotes[path], problem, code, "python").verdict is Verdict.AC
    assert judge_on(zygotes[path], problem, code.replace("a + b", "a - b"), "python").verdict is Verdict.WA


@needs_gpp
@pytest.mark.parametrize("path", ["C", "Python"])
def test_cpp_on_both_paths(zygotes, path):
    good = "#include <cstdio>\nint main(){long long a,b;scanf(\"%lld %lld\",&a,&b);printf(\"%lld\\n\",a+b);}\n"
    shell = "#include <unistd.h>\nint main(){execl(\"/bin/sh\",\"sh\",\"-c\",\"echo 3\",(char*)0);return 9;}\n"
    problem = stdio_problem([("1 2\n", "3\n"), ("2 2\n", "4\n")])
    assert judge_on(zygotes[path], problem, good, "cpp").verdict is Verdict.AC
    assert judge_on(zygotes[path], problem, shell, "cpp").verdict is Verdict.RE  # a second execve is denied


def test_a_pool_on_the_python_path_judges_a_batch_like_the_c_path(monkeypatch):
    problem = stdio_problem()
    codes = ["a, b = map(int, input().split())\nprint(a + b)\n", "print(3)\n", "import sys\nsys.exit(1)\n"]
    with JudgePool(workers=2) as fast:
        expected = [r.verdict for r in fast.judge_many([(problem, c, "python") for c in codes])]
    monkeypatch.setenv("MC_JUDGE_FASTCHILD", "0")
    with JudgePool(workers=2) as python:
        assert [r.verdict for r in python.judge_many([(problem, c, "python") for c in codes])] == expected
    assert expected == [Verdict.AC, Verdict.WA, Verdict.RE]


def test_what_the_zygote_prints_never_waits_in_a_childs_streams():
    # The zygote installs the submissions' std streams as its own (executor.install_stdio) and flushes them
    # after each request it handles; a child forked afterwards must find them empty.
    check = """
import os, sys
from judge import executor
executor.install_stdio()
print("zygote noise", file=sys.stderr)
print("zygote noise")
executor.flush_stdio()
read_end, write_end = os.pipe()
pid = os.fork()
if pid == 0:
    os.dup2(write_end, 1)
    os.dup2(write_end, 2)
    executor.flush_stdio()
    os._exit(0)
os.close(write_end)
os.waitpid(pid, 0)
print("child wrote", repr(os.read(read_end, 100)), file=sys.stderr)
"""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, cwd=repo, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("zygote noise") == 1 and "child wrote b''" in done.stderr, done.stderr
    assert done.stdout == "zygote noise\n"
