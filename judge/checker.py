"""Custom output validators, in two command-line conventions (problem.Checker.convention):

  kattis   `checker INPUT_FILE ANSWER_FILE FEEDBACK_DIR < contestant_output`; exit 42 accepted, 43 wrong answer.
  testlib  `checker INPUT_FILE OUTPUT_FILE ANSWER_FILE` (Codeforces/Polygon, testlib.h's registerTestlibCmd);
           exit 0 accepted; 1 wrong answer, 2 presentation error, 4 "dirt" (extra output), 7 partial points
           and 8 unexpected end of the output are all wrong for the judge (no partial credit); 3 is the
           checker's own failure.
Any other exit, a signal or a timeout is the checker's failure (SE), never the submission's.

Checkers come with the problem, so they are trusted, but they still run sandboxed (start_trusted, shared
with interactors, judge/interactive.py), on the judging side and never in the zygote: they read the
expected answer, which must never enter the zygote's memory (its children are forked from it).
  - rlimits through util-linux `prlimit` (address space, CPU, no core files), their own session, and the
    whole group killed when they time out;
  - when the judge runs as root, the user TRUSTED_UID (judge/sandbox.py: not root, not the submissions'
    nobody, no supplementary groups), in a network namespace of its own (util-linux `unshare --net`, about
    5 ms a start; where it cannot be made, without one and a note on stderr once), with a working folder
    (input, answer, output, feedback) that only it can read. So it cannot read root's files (/etc/shadow),
    write outside its folder except where any user may (/tmp), or reach the network. It is another user
    than the submissions' so that they cannot reach it through /proc/PID (its folder, its memory).
  - when the judge is not root, they run as the judging user, with the rlimits only.
  - where that user cannot run this Python (an interpreter under a folder only root may enter, such as
    /root/.pyenv), Python checkers and interactors start through a launcher (judge/sandbox.py
    enter_trusted_sandbox, about 40 ms more a start, measured) that makes them a private view of the disk where the
    Python installation, their folder and their program stay visible and every other folder outside the
    system's is covered (/tmp too), then becomes the user; if even that fails, they run as the judging
    user, with a note on stderr once.
  - not covered: a C++ (or reachable Python) problem program may still write where any user may (/tmp,
    /var/tmp, /dev/shm), within its file-size-free rlimits.
A checker is prepared once per source (C++ compiled, Python written to a file) and cached.
"""
from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading

from judge.compile import default_standard
from judge.problem import Checker
from judge.sandbox import TRUSTED_UID
from judge.verdict import Verdict

VERDICTS_BY_EXIT = {
    "kattis": {42: Verdict.AC, 43: Verdict.WA},
    "testlib": {0: Verdict.AC, 1: Verdict.WA, 2: Verdict.WA, 4: Verdict.WA, 7: Verdict.WA, 8: Verdict.WA},
}
CHECKER_MEMORY_BYTES = 2 << 30
CHECKER_MIN_TIME_S = 10.0
_COMPILE_TIMEOUT_S = 120.0

_lock = threading.RLock()
_prepared: dict[str, list[str] | CheckerError] = {}  # a checker that failed to compile fails the same way again
_scratch: str | None = None
_confinement: dict[bool, tuple[list[str], dict]] = {}  # by "is a Python program": command prefix, Popen kwargs


class CheckerError(RuntimeError):
    """The checker could not be prepared or did not follow the contract."""


def check(checker: Checker, test_input: str, answer: str, output: bytes, time_limit_s: float) -> Verdict:
    command = _command_for(checker)
    with tempfile.TemporaryDirectory(prefix="mc-check-", dir=_scratch_root()) as work:
        input_path, answer_path = _write(work, "input", test_input), _write(work, "answer", answer)
        if checker.convention == "testlib":
            arguments, stdin = [input_path, _write(work, "output", output), answer_path], b""
        else:
            feedback = os.path.join(work, "feedback")
            os.mkdir(feedback)
            arguments, stdin = [input_path, answer_path, feedback + "/"], output
        hand_over(work)
        timeout = max(CHECKER_MIN_TIME_S, 2 * time_limit_s)
        process = start_trusted(command, arguments, work, timeout, stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            process.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            return Verdict.SE
        finally:
            _kill_group(process.pid)
            process.wait()
    return VERDICTS_BY_EXIT[checker.convention].get(process.returncode, Verdict.SE)


def start_trusted(command: list[str], arguments: list[str], work: str, cpu_s: float,
                  **popen) -> subprocess.Popen:
    """Start a problem's own program (a checker, an interactor) in its working folder `work` (given to it by
    hand_over), sandboxed as the module's docstring says: its own session (kill it with os.killpg), rlimits,
    and when root another user and no network. `popen`: its standard streams and other Popen arguments."""
    prefix, user = _confinement_for(command[0] == sys.executable)
    places = {_WORK: work, _PROGRAM: os.path.dirname(command[-1])}
    prefix = [places.get(part, part) for part in prefix]
    return subprocess.Popen([*prefix, *_limits(cpu_s), *command, *arguments], cwd=work, start_new_session=True,
                            **user, **popen)


def hand_over(work: str) -> None:
    """Make the working folder and what is in it the trusted user's alone (when root; else nothing)."""
    if os.geteuid() != 0:
        return
    for folder, subfolders, files in os.walk(work):
        for name in [*subfolders, *files]:
            os.chown(os.path.join(folder, name), TRUSTED_UID, TRUSTED_UID)
    os.chown(work, TRUSTED_UID, TRUSTED_UID)
    os.chmod(work, 0o700)


def _confinement_for(python: bool) -> tuple[list[str], dict]:
    """The command prefix and Popen arguments that make a trusted program another user without network;
    probed once (per kind: Python needs its interpreter reachable by that user)."""
    with _lock:
        if python not in _confinement:
            _confinement[python] = _probe_confinement(python)
        return _confinement[python]


def _probe_confinement(python: bool) -> tuple[list[str], dict]:
    if os.geteuid() != 0:
        return [], {}
    probe = [sys.executable, "-c", ""] if python else ["true"]
    unshare = shutil.which("unshare")
    options = [[unshare, "--net", f"--setgid={TRUSTED_UID}", f"--setuid={TRUSTED_UID}", "--"]] if unshare else []
    for prefix, user in [*((p, {}) for p in options),
                         ([], {"user": TRUSTED_UID, "group": TRUSTED_UID, "extra_groups": []})]:
        try:
            done = subprocess.run([*prefix, *probe], capture_output=True, timeout=30, cwd="/", **user)
        except (OSError, subprocess.SubprocessError):
            continue
        if done.returncode == 0:
            if not prefix:
                _note("problem programs (checkers, interactors) run without a network namespace of their own "
                      "(`unshare --net` is missing or not permitted here)")
            return prefix, user
    if python:
        # The interpreter is under a folder closed to other users (/root/.pyenv): a launcher, as root, makes
        # a private view of the disk where the Python installation is reachable, then becomes the user.
        prefix = _view_launcher()
        try:
            with tempfile.TemporaryDirectory(dir=_scratch_root()) as folder:
                done = subprocess.run([*(folder if p in (_WORK, _PROGRAM) else p for p in prefix), *probe],
                                      capture_output=True, timeout=30, cwd=folder)
            if done.returncode == 0:
                return prefix, {}
            reason = done.stderr.decode(errors="replace").strip()[-300:]
        except (OSError, subprocess.SubprocessError) as e:
            reason = str(e)
        _note(f"Python checkers and interactors run as the judging user (root): user {TRUSTED_UID} cannot run "
              f"{sys.executable} (a folder on its path is closed to other users) and no private view of the "
              f"disk could be made ({reason})")
    else:
        _note(f"checkers and interactors run as the judging user (root): cannot switch to user {TRUSTED_UID}")
    return [], {}


# Stand for the program's working folder and the folder of its prepared program in a command prefix.
_WORK, _PROGRAM = "<work>", "<program>"


def _view_launcher() -> list[str]:
    """judge/sandbox.py enter_trusted_sandbox as a command prefix (about 40 ms more a start)."""
    import sysconfig

    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    keep = [*sorted({sys.base_prefix, sys.prefix,
                     *(sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib"))}),
            _WORK, _PROGRAM]
    code = (f"import sys; sys.path.insert(0, {package_root!r}); "
            "from judge.sandbox import enter_trusted_sandbox; enter_trusted_sandbox(sys.argv[1:])")
    return [sys.executable, "-S", "-c", code, str(TRUSTED_UID), *keep, "--"]


def _note(text: str) -> None:
    print(f"mc-judge: {text}", file=sys.stderr)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, 9)
    except (ProcessLookupError, PermissionError):
        pass


def _write(folder: str, name: str, content: str | bytes) -> str:
    path = os.path.join(folder, name)
    with open(path, "wb") as f:
        f.write(content.encode() if isinstance(content, str) else content)
    return path


def _limits(timeout_s: float) -> list[str]:
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        return []
    return [prlimit, f"--as={CHECKER_MEMORY_BYTES}", f"--cpu={int(timeout_s) + 1}", "--core=0", "--"]


def _command_for(checker: Checker) -> list[str]:
    key = hashlib.sha256(f"{checker.language}\0{checker.source}".encode()).hexdigest()
    with _lock:
        if key not in _prepared:
            try:
                _prepared[key] = _prepare(checker, os.path.join(_scratch_root(), key[:16]))
            except CheckerError as e:
                _prepared[key] = e
        prepared = _prepared[key]
    if isinstance(prepared, CheckerError):
        raise prepared
    return prepared


def _prepare(checker: Checker, folder: str) -> list[str]:
    # Readable and runnable by the trusted user whatever the umask, writable by none but the judging user.
    os.makedirs(folder, exist_ok=True)
    os.chmod(folder, 0o755)
    if checker.language == "python":
        path = os.path.join(folder, "checker.py")
        with open(path, "w") as f:
            f.write(checker.source)
        os.chmod(path, 0o644)
        return [sys.executable, path]
    source, binary = os.path.join(folder, "checker.cpp"), os.path.join(folder, "checker")
    with open(source, "w") as f:
        f.write(checker.source)
    compiler = shutil.which("g++")
    if compiler is None:
        raise CheckerError("g++ not found on PATH; it is needed to compile this problem's C++ checker")
    done = subprocess.run([compiler, f"-std={default_standard()}", "-O2", "-o", binary, source],
                          capture_output=True, timeout=_COMPILE_TIMEOUT_S)
    if done.returncode != 0:
        raise CheckerError(f"the problem's C++ checker does not compile:\n{done.stderr.decode()[-2000:]}")
    os.chmod(binary, 0o755)
    return [binary]


def _scratch_root() -> str:
    global _scratch
    with _lock:
        if _scratch is None:
            _scratch = tempfile.mkdtemp(prefix="mc-checkers-")
            os.chmod(_scratch, 0o711)  # the trusted user passes through to its folder and its program
            atexit.register(shutil.rmtree, _scratch, True)
        return _scratch
