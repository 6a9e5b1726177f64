"""Interactive problems: a guess-the-number interactor (Python and C++, Kattis and testlib conventions) talks
to real submissions in the real zygote and sandbox; each verdict of the rule in judge/interactive.py, the
schema, a Kattis package, and each entry point (the pool API, mc-judge run, batch and serve)."""
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from judge import checker as checkers
from judge.audit import audit
from judge.executor import Outcome
from judge.interactive import interactive_verdict
from judge.loaders import load_problems
from judge.problem import Interactor, Problem, ProblemError, TestCase
from judge.verdict import Verdict
from tests.support import free_port
from judge_test_helpers import ESCAPES_CPP

_SCRIPT = Path(sys.executable).parent / "mc-judge"
MC_JUDGE = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "judge.cli"]
needs_gpp = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")

# The protocol: the interactor sends n; the submission asks "? x" (at most 11 times) and is told "<", ">" or
# "=" (the secret is less than, greater than or equal to x), then answers "! x". The input file holds n,
# only the answer file holds the secret.
PY_KATTIS = r"""
import sys
n = int(open(sys.argv[1]).read())
secret = int(open(sys.argv[2]).read())
print(n, flush=True)
for query in range(12):
    words = sys.stdin.readline().split()
    if len(words) != 2 or words[0] not in ("?", "!") or not words[1].lstrip("-").isdigit():
        sys.exit(43)
    guess = int(words[1])
    if words[0] == "!":
        sys.exit(42 if guess == secret else 43)
    if query == 11:
        sys.exit(43)  # a twelfth question
    print("<" if secret < guess else ">" if secret > guess else "=", flush=True)
"""
CPP_KATTIS = r"""
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
int main(int argc, char** argv) {
    if (argc < 4) return 1;
    long long n, secret;
    std::ifstream(argv[1]) >> n;
    std::ifstream(argv[2]) >> secret;
    std::cout << n << std::endl;
    for (int query = 0; query < 12; ++query) {
        std::string kind;
        long long guess;
        if (!(std::cin >> kind >> guess)) return 43;
        if (kind == "!") return guess == secret ? 42 : 43;
        if (kind != "?" || query == 11) return 43;
        std::cout << (secret < guess ? "<" : secret > guess ? ">" : "=") << std::endl;
    }
    return 43;
}
"""
# testlib's registerInteraction arguments: input, output (a log for a checker), answer; exit 0 accepted, 1 wrong.
PY_TESTLIB = PY_KATTIS.replace("sys.argv[2]", "sys.argv[3]").replace("42", "0").replace("43", "1")
CRASHING = "import sys\nprint(int(open(sys.argv[1]).read()), flush=True)\nsys.stdin.readline()\nraise RuntimeError('bug')\n"
HANGING = "import time\ntime.sleep(600)\n"

GOOD_PY = """
n = int(input())
low, high = 1, n
while True:
    middle = (low + high) // 2
    print("?", middle, flush=True)
    reply = input()
    if reply == "=":
        print("!", middle, flush=True)
        break
    low, high = (low, middle - 1) if reply == "<" else (middle + 1, high)
"""
GOOD_CPP = r"""
#include <iostream>
#include <string>
int main() {
    long long n;
    std::cin >> n;
    long long low = 1, high = n;
    while (true) {
        long long middle = (low + high) / 2;
        std::cout << "? " << middle << std::endl;
        std::string reply;
        std::cin >> reply;
        if (reply == "=") { std::cout << "! " << middle << std::endl; return 0; }
        if (reply == "<") high = middle - 1; else low = middle + 1;
    }
}
"""
WRONG_GUESS = "input()\nprint('! 1', flush=True)\n"
# Asks too many questions, and stops without an error when the interactor hangs up on it.
LINEAR = """
import sys
n = int(input())
for guess in range(1, n + 1):
    print("?", guess, flush=True)
    reply = sys.stdin.readline().strip()
    if not reply:
        break
    if reply == "=":
        print("!", guess, flush=True)
        break
"""
NEVER_FLUSHES = "import sys\nn = int(sys.stdin.readline())\nsys.stdout.write('? 500\\n')\nsys.stdin.readline()\n"
WAITS_FOREVER = "import time\ninput()\ntime.sleep(600)\n"
EXITS_EARLY = "input()\n"
CRASHES_EARLY = "input()\nraise ValueError('gave up')\n"
# Looks for the answer file (the secret) where the judge leaves it for the interactor (PATTERN), anywhere in
# /tmp and through other processes' working folders, and answers with it if found.
SNOOPS = r"""
import glob, os
n = int(input())
found = []
for pattern in (PATTERN, "/tmp/**/answer", "/proc/*/cwd/answer"):
    try:
        found += glob.glob(pattern, recursive=True)
    except OSError:
        pass
secret = None
for path in found:
    try:
        secret = int(open(path).read())
        break
    except (OSError, ValueError):
        pass
print("!", secret if secret is not None else 0, flush=True)
"""
TESTS = [("1000\n", "427\n"), ("1000\n", "1\n"), ("1000\n", "1000\n")]


def guess_problem(source=PY_KATTIS, language="python", convention="kattis", tests=TESTS, time_limit_s=1.0):
    return Problem(id="guess", kind="stdio", tests=[TestCase(i, o) for i, o in tests], time_limit_s=time_limit_s,
                   memory_limit_mb=256, interactor=Interactor(language, source, convention))


@pytest.mark.parametrize("code, language, verdict", [
    (GOOD_PY, "python", "AC"),
    pytest.param(GOOD_CPP, "cpp", "AC", marks=needs_gpp),
    (WRONG_GUESS, "python", "WA"),
    (LINEAR, "python", "WA"),  # the interactor ends at the twelfth question, before the submission fails
    (EXITS_EARLY, "python", "WA"),  # a clean exit with no answer: the interactor's verdict
    (CRASHES_EARLY, "python", "RE"),  # the submission failed first: its failure decides
])
def test_python_kattis_interactor(judge_pool, code, language, verdict):
    result = judge_pool.judge(guess_problem(), code, language, all_tests=True)
    assert result.verdict.value == verdict, result.detail
    assert result.total == 3 and (result.passed == 3) == (verdict == "AC")


@needs_gpp
@pytest.mark.parametrize("code, language, verdict", [
    (GOOD_CPP, "cpp", "AC"), (GOOD_PY, "python", "AC"), (WRONG_GUESS, "python", "WA"), (LINEAR, "python", "WA"),
])
def test_cpp_kattis_interactor(judge_pool, code, language, verdict):
    result = judge_pool.judge(guess_problem(CPP_KATTIS, "cpp"), code, language)
    assert result.verdict.value == verdict, result.detail


@pytest.mark.parametrize("code, verdict", [(GOOD_PY, "AC"), (WRONG_GUESS, "WA"), (LINEAR, "WA")])
def test_testlib_convention_interactor(judge_pool, code, verdict):
    assert judge_pool.judge(guess_problem(PY_TESTLIB, convention="testlib"), code).verdict.value == verdict


@pytest.mark.parametrize("code", [NEVER_FLUSHES, WAITS_FOREVER], ids=["never-flushes", "waits-forever"])
def test_a_submission_that_waits_is_tle_within_the_pairs_deadline(judge_pool, code):
    problem = guess_problem(tests=TESTS[:1], time_limit_s=0.5)  # wall limit 2 s
    start = time.monotonic()
    result = judge_pool.judge(problem, code)
    assert result.verdict is Verdict.TLE, result.detail
    assert time.monotonic() - start < 2.0 + 1.0 + 2.0  # the deadline, the interactor's reaction, set-up


def test_an_interactor_that_crashes_is_se(judge_pool):
    # The submission waits before reading the reply, so the interactor's crash is clearly first (a crash
    # at the same moment as the submission's own end counts the submission first: see judge/interactive.py).
    waits = "n = int(input())\nprint('?', 1, flush=True)\nimport time\ntime.sleep(0.5)\nprint('!', input())\n"
    result = judge_pool.judge(guess_problem(CRASHING), waits)
    assert result.verdict is Verdict.SE, result.to_dict()


def test_an_interactor_that_hangs_is_se_and_is_ended(judge_pool):
    problem = guess_problem(HANGING, tests=TESTS[:1], time_limit_s=0.5)
    start = time.monotonic()
    assert judge_pool.judge(problem, GOOD_PY).verdict is Verdict.SE
    assert time.monotonic() - start < 2.0 + 1.0 + 2.0
    script = checkers._command_for(problem.interactor)[-1]  # the prepared interactor, cached by its source
    left = [p.pid for p in psutil.process_iter(["cmdline"]) if script in (p.info["cmdline"] or [])]
    assert left == [], "the hanging interactor was left running"


@needs_gpp
def test_an_interactor_that_does_not_compile_is_se_with_the_reason(judge_pool):
    result = judge_pool.judge(guess_problem("int main( {", "cpp"), GOOD_PY)
    assert result.verdict is Verdict.SE and "interactor cannot be prepared" in result.detail


@pytest.mark.skipif(os.geteuid() != 0, reason="the private view of the disk needs root (README: judge sandbox)")
def test_the_answer_file_is_out_of_the_submissions_reach(judge_pool):
    pattern = repr(os.path.join(checkers._scratch_root(), "mc-interact-*", "answer"))
    # The control: the interactor, outside the sandbox, finds its own answer file with the submission's
    # pattern (else it fails: SE), so WA means the submission looked in the right place and saw nothing.
    control = f"import glob, os, sys\nif os.path.abspath(sys.argv[2]) not in glob.glob({pattern}):\n    sys.exit(1)\n"
    result = judge_pool.judge(guess_problem(control + PY_KATTIS), SNOOPS.replace("PATTERN", pattern))
    assert result.verdict is Verdict.WA, result.detail


def test_verdict_rule_who_ended_first():
    def outcome(exit_code=0, timed_out=False, ready=True):
        return Outcome(ready, timed_out, False, exit_code, None, b"", b"", b"", 0.1, 0.01)

    rule = interactive_verdict
    assert rule(outcome(), 1.0, "kattis", 42, False) is Verdict.AC
    assert rule(outcome(), 1.0, "kattis", 43, True) is Verdict.WA
    assert rule(outcome(exit_code=1), 1.0, "kattis", 43, True) is Verdict.WA  # the interactor first
    assert rule(outcome(exit_code=1), 1.0, "kattis", 43, False) is Verdict.RE  # the submission first
    assert rule(outcome(exit_code=1), 1.0, "kattis", 42, True) is Verdict.RE  # accepted, then it failed
    assert rule(outcome(timed_out=True), 1.0, "kattis", 42, True) is Verdict.TLE
    assert rule(outcome(timed_out=True), 1.0, "kattis", 1, False) is Verdict.TLE  # killed; its reaction aside
    assert rule(outcome(), 1.0, "kattis", 1, True) is Verdict.SE  # the interactor failed first
    assert rule(outcome(), 1.0, "kattis", -9, False) is Verdict.SE  # a clean submission, a crashed interactor
    assert rule(outcome(), 1.0, "kattis", None, False) is Verdict.SE  # hung
    assert rule(outcome(ready=False), 1.0, "kattis", 42, False) is Verdict.SE
    assert rule(outcome(), 1.0, "testlib", 0, False) is Verdict.AC
    assert rule(outcome(), 1.0, "testlib", 2, True) is Verdict.WA
    assert rule(outcome(), 1.0, "testlib", 3, True) is Verdict.SE


def test_schema_round_trip_and_errors_name_the_problem():
    problem = guess_problem()
    again = Problem.from_dict(json.loads(json.dumps(problem.to_dict())))
    assert again == problem and again.interactor == Interactor("python", PY_KATTIS, "kattis")
    row = problem.to_dict()
    for change, words in [
        ({"kind": "function", "fn_name": "f"}, "function-call problems cannot be interactive"),
        ({"checker": {"language": "python", "source": "x"}}, "remove 'checker'"),
        ({"interactor": {"language": "java", "source": "x"}}, "interactor language"),
        ({"interactor": {"language": "python", "source": "x", "convention": "icpc"}}, "interactor convention"),
        ({"interactor": {"language": "python", "source": "  "}}, "interactor source"),
        ({"interactor": {"language": "python"}}, "missing keys ['source']"),
        ({"interactor": {"language": "python", "source": "x", "timeout": 3}}, "unknown keys ['timeout']"),
        ({"interactor": "interactor.py"}, "interactor must be an object"),
    ]:
        with pytest.raises(ProblemError) as error:
            Problem.from_dict({**row, **change}, where="problems.jsonl:3")
        assert "problems.jsonl:3" in str(error.value) and "'guess'" in str(error.value), error.value
        assert words in str(error.value)


def write_kattis_package(root: Path, yaml_text: str, validator_dir: str) -> Path:
    files = {
        "problem.yaml": yaml_text,
        "data/sample/1.in": "10\n", "data/sample/1.ans": "7\n",
        "data/sample/1.interaction": "<10\n>? 5\n<>\n>! 7\n",
        "data/secret/a.in": "1000\n", "data/secret/a.ans": "427\n",
        "data/secret/b.in": "1000\n", "data/secret/b.ans": "999\n",
        f"{validator_dir}/guess/interactor.py": PY_KATTIS,
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.mark.parametrize("yaml_text, validator_dir", [
    ("name: Guess\nvalidation: custom interactive\nlimits: {memory: 256}\n", "output_validators"),
    ("problem_format_version: 2023-07-draft\nname: Guess\ntype: interactive\n", "output_validator"),
    ("problem_format_version: 2023-07-draft\nname: Guess\ntype: [pass-fail, interactive]\n", "output_validator"),
], ids=["legacy", "2023", "2023-type-list"])
def test_kattis_interactive_package_loads_and_is_judged(judge_pool, tmp_path, yaml_text, validator_dir):
    (problem,) = load_problems(write_kattis_package(tmp_path / "guess", yaml_text, validator_dir))
    assert problem.checker is None and problem.interactor == Interactor("python", PY_KATTIS, "kattis")
    assert [t.input for t in problem.tests] == ["10\n", "1000\n", "1000\n"]  # .interaction files are not tests
    assert judge_pool.judge(problem, GOOD_PY, all_tests=True).passed == 3
    assert judge_pool.judge(problem, WRONG_GUESS).verdict is Verdict.WA


def test_kattis_multi_pass_and_interactive_without_validator_are_refused(tmp_path):
    package = write_kattis_package(tmp_path / "multi", "type: [interactive, multi-pass]\n", "output_validator")
    with pytest.raises(ProblemError, match="multi-pass problems"):
        load_problems(package)
    package = write_kattis_package(tmp_path / "bare", "validation: custom interactive\n", "output_validators")
    shutil.rmtree(package / "output_validators")
    with pytest.raises(ProblemError, match=f"{package}: problem.yaml says the problem is interactive"):
        load_problems(package)


def test_mc_judge_audit_of_an_interactive_package(judge_pool, tmp_path):
    package = write_kattis_package(tmp_path / "archive" / "guess",
                                   "validation: custom interactive\nlimits: {time_limit: 1}\n", "output_validators")
    for label, name, code in [("accepted", "binary.py", GOOD_PY), ("accepted", "binary.cpp", GOOD_CPP),
                              ("wrong_answer", "one.py", WRONG_GUESS), ("wrong_answer", "linear.py", LINEAR),
                              ("run_time_error", "crash.py", CRASHES_EARLY)]:
        if name.endswith(".cpp") and shutil.which("g++") is None:
            continue
        (package / "submissions" / label).mkdir(parents=True, exist_ok=True)
        (package / "submissions" / label / name).write_text(code)
    report = audit(tmp_path / "archive", judge_pool)
    assert report.errors == [] and report.disagreements == [], report.to_dict()
    assert report.agreement == 1.0 and report.judged >= 4


# ---- entry points: the pool API is used above; mc-judge run, batch and serve here ----------------------

def mc_judge(*args, timeout=120):
    return subprocess.run([*MC_JUDGE, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def test_mc_judge_run_with_a_json_problem_and_with_a_package(tmp_path):
    problem_file = tmp_path / "guess.json"
    problem_file.write_text(json.dumps(guess_problem().to_dict()))
    code = tmp_path / "solution.py"
    code.write_text(GOOD_PY)
    done = mc_judge("run", "--problem", problem_file, "--code", code)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["verdict"] == "AC"
    package = write_kattis_package(tmp_path / "guess", "validation: custom interactive\n", "output_validators")
    code.write_text(WRONG_GUESS)
    done = mc_judge("run", "--problem", package, "--code", code)
    assert done.returncode == 0 and json.loads(done.stdout)["verdict"] == "WA", done.stderr


def test_mc_judge_batch(tmp_path):
    problems = tmp_path / "problems.jsonl"
    problems.write_text(json.dumps(guess_problem().to_dict()) + "\n")
    submissions = tmp_path / "submissions.jsonl"
    rows = [{"id": "good", "problem_id": "guess", "code": GOOD_PY, "language": "python"},
            {"id": "wrong", "problem_id": "guess", "code": WRONG_GUESS, "language": "python"}]
    submissions.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "results.jsonl"
    done = mc_judge("batch", "--problems", problems, "--submissions", submissions, "--out", out, "--workers", "2")
    assert done.returncode == 0, done.stderr
    verdicts = {row["id"]: row["verdict"] for row in map(json.loads, out.read_text().splitlines())}
    assert verdicts == {"good": "AC", "wrong": "WA"}


@pytest.mark.distributed
def test_mc_judge_serve(tmp_path):
    port = free_port()
    service = subprocess.Popen([*MC_JUDGE, "serve", "--port", str(port), "--workers", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/health", timeout=5).close()
                break
            except OSError:
                assert time.monotonic() < deadline and service.poll() is None, "the service did not start"
                time.sleep(0.2)
        for code, verdict in [(GOOD_PY, "AC"), (LINEAR, "WA")]:
            body = json.dumps({"problem": guess_problem().to_dict(), "code": code}).encode()
            request = urllib.request.Request(url + "/judge", data=body, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=60) as response:
                assert json.loads(response.read())["verdict"] == verdict
    finally:
        service.terminate()
        service.wait(timeout=30)


# ---- pipes that fill up, kernels without pidfd_open, descriptors, the interactor's sandbox --------------

# Sends n, then more than a pipe holds (200 KB the submission never reads), then reads "! x": x = n // 2 is
# accepted. A submission that answers at once and exits leaves the padding unread.
PADDING_INTERACTOR = r"""
import sys
n = int(open(sys.argv[1]).read())
print(n, flush=True)
print("x" * 200_000, flush=True)
words = sys.stdin.readline().split()
sys.exit(42 if words == ["!", str(n // 2)] else 43)
"""
ANSWERS_AT_ONCE = "n = int(input())\nprint('!', n // 2, flush=True)\n"
ANSWERS_WRONG_AT_ONCE = "n = int(input())\nprint('!', n, flush=True)\n"
# Writes more than a pipe holds before reading anything, as the padding interactor does: both block.
WRITES_WITHOUT_READING = "import sys\nsys.stdout.write('y' * 200_000)\nsys.stdout.flush()\ninput()\n"
# Asks a question and exits without reading the reply: the interactor's reply goes to a submission that ended.
ASKS_THEN_EXITS = "input()\nprint('? 500', flush=True)\n"


def padding_problem(time_limit_s=1.0):
    return guess_problem(PADDING_INTERACTOR, tests=[("1000\n", "500\n")], time_limit_s=time_limit_s)


@pytest.mark.parametrize("code, verdict", [(ANSWERS_AT_ONCE, "AC"), (ANSWERS_WRONG_AT_ONCE, "WA")])
def test_an_interactor_writing_more_than_a_pipe_holds_to_a_submission_that_ended(judge_pool, code, verdict):
    # The judge once held a reader of the submission's input until the interactor exited: the interactor
    # blocked on the full pipe forever and was killed at the deadline (SE for a correct submission).
    start = time.monotonic()
    result = judge_pool.judge(padding_problem(), code)
    assert result.verdict.value == verdict, result.detail
    assert time.monotonic() - start < 2.5  # well before the deadline (3 s) and the interactor's reaction


def test_both_sides_writing_without_reading_is_tle_by_the_deadline(judge_pool):
    start = time.monotonic()
    result = judge_pool.judge(padding_problem(time_limit_s=0.5), WRITES_WITHOUT_READING)  # wall limit 2 s
    assert result.verdict is Verdict.TLE, result.detail
    assert time.monotonic() - start < 2.0 + 1.0 + 2.0


def test_an_interactor_replying_to_a_submission_that_ended_gives_its_own_verdict(judge_pool):
    # The reply goes nowhere, and neither blocks nor fails the (Python, naive) interactor: it then reads the
    # end of the submission's output and says WA, never SE.
    for _ in range(3):
        assert judge_pool.judge(guess_problem(), ASKS_THEN_EXITS).verdict is Verdict.WA


def _open_fds():
    return set(os.listdir("/proc/self/fd"))


def test_without_pidfd_open_the_watch_polls_and_cleans_up(judge_pool, monkeypatch):
    def no_pidfd(pid, flags=0):
        raise OSError(38, "Function not implemented")  # ENOSYS: Linux before 5.3

    judge_pool.judge(guess_problem(), GOOD_PY)  # the pool's own descriptors are open before counting
    before = _open_fds()
    monkeypatch.setattr(os, "pidfd_open", no_pidfd)
    assert judge_pool.judge(guess_problem(), GOOD_PY, all_tests=True).verdict is Verdict.AC
    assert judge_pool.judge(guess_problem(), WRONG_GUESS).verdict is Verdict.WA
    hanging = guess_problem(HANGING, tests=TESTS[:1], time_limit_s=0.5)
    start = time.monotonic()
    assert judge_pool.judge(hanging, GOOD_PY).verdict is Verdict.SE
    assert time.monotonic() - start < 2.0 + 1.0 + 2.0
    script = checkers._command_for(hanging.interactor)[-1]
    assert [p.pid for p in psutil.process_iter(["cmdline"]) if script in (p.info["cmdline"] or [])] == []
    assert _open_fds() <= before


def test_a_failing_pipe_leaks_no_descriptor(monkeypatch):
    from judge import interactive
    from judge.sandbox import Limits

    real_pipe, calls = os.pipe, []

    def second_fails():
        calls.append(1)
        if len(calls) == 2:
            raise OSError(24, "Too many open files")
        return real_pipe()

    problem = guess_problem()
    checkers._command_for(problem.interactor)
    before = _open_fds()
    monkeypatch.setattr(os, "pipe", second_fails)
    verdict, outcome = interactive.judge_test(None, problem.interactor, problem.tests[0], Limits(1.0, 256))
    monkeypatch.undo()
    assert verdict is Verdict.SE and b"cannot be started" in outcome.stderr
    assert _open_fds() == before


def test_the_zygote_closes_received_descriptors_it_cannot_use():
    import socket

    from judge.zygote import _Server

    ours, theirs = socket.socketpair()
    server = _Server("/nonexistent", [], theirs)
    server.program = object()  # as if a submission were loaded
    r, w = os.pipe()
    try:
        for sent in ([r], []):  # one descriptor, none
            socket.send_fds(ours, [b"F"], sent)
            before = _open_fds()
            with pytest.raises(RuntimeError, match="expected the child's stdin and stdout"):
                server.run_interactive()
            assert _open_fds() <= before, "the received descriptors were left open"
    finally:
        for fd in (r, w):
            os.close(fd)
        ours.close()
        theirs.close()


CONFINED_CPP_KATTIS = ESCAPES_CPP + CPP_KATTIS.replace(
    "if (argc < 4) return 1;", "if (argc < 4 || escaped(argv[0])) return 1;")
needs_root_and_unshare = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                                            reason="the interactor's own user and network need root and unshare")


@needs_gpp
@needs_root_and_unshare
def test_the_interactor_is_sandboxed(judge_pool):
    assert "escaped(argv[0])" in CONFINED_CPP_KATTIS
    result = judge_pool.judge(guess_problem(CONFINED_CPP_KATTIS, "cpp"), GOOD_PY, all_tests=True)
    assert result.verdict is Verdict.AC, "the interactor could reach beyond its folder (or failed): " + result.detail
    assert judge_pool.judge(guess_problem(CONFINED_CPP_KATTIS, "cpp"), WRONG_GUESS).verdict is Verdict.WA

# The same look in Python (run through a private view of the disk where the interpreter is under a folder
# closed to other users, as /root/.pyenv here: there /tmp is covered too).
ESCAPES_PY = r"""
import os, sys
def _writable(path):
    try:
        open(path, "w").close()
    except OSError:
        return False
    os.unlink(path)
    return True
def _readable(path):
    try:
        open(path).read(1)
    except OSError:
        return False
    return True
if (os.getuid() in (0, 65534) or os.getgid() == 0 or os.getgroups() or _readable("/etc/shadow")
        or _writable("../escaped") or _writable(os.path.join(os.path.dirname(sys.argv[0]), "escaped"))
        or any(":" in line and "lo:" not in line for line in open("/proc/net/dev"))):
    sys.exit(1)
"""


@needs_root_and_unshare
def test_a_python_interactor_is_sandboxed(judge_pool):
    problem = guess_problem(ESCAPES_PY + PY_KATTIS)
    result = judge_pool.judge(problem, GOOD_PY, all_tests=True)
    assert result.verdict is Verdict.AC, "the interactor could reach beyond its folder (or failed): " + result.detail
    assert judge_pool.judge(problem, LINEAR).verdict is Verdict.WA
