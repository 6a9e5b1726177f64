"""Custom output validators, in two command-line conventions (problem.Checker.convention):

  kattis   `checker INPUT_FILE ANSWER_FILE FEEDBACK_DIR < contestant_output`; exit 42 accepted, 43 wrong answer.
  testlib  `checker INPUT_FILE OUTPUT_FILE ANSWER_FILE` (Codeforces/Polygon, testlib.h's registerTestlibCmd);
           exit 0 accepted; 1 wrong answer, 2 presentation error, 4 "dirt" (extra output), 7 partial points
           and 8 unexpected end of the output are all wrong for the judge (no partial credit); 3 is the
           checker's own failure.
Any other exit, a signal or a timeout is the checker's failure (SE), never the submission's.

Checkers come with the problem, so they are trusted, but they still run in a subprocess with a time
limit and rlimits (through util-linux `prlimit`), in the judging process and never in the zygote: they
read the expected answer, which must never enter the zygote's memory (its children are forked from it).
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
        timeout = max(CHECKER_MIN_TIME_S, 2 * time_limit_s)
        try:
            done = subprocess.run([*_limits(timeout), *command, *arguments], input=stdin, capture_output=True,
                                  timeout=timeout, cwd=work, start_new_session=True)
        except subprocess.TimeoutExpired:
            return Verdict.SE
    return VERDICTS_BY_EXIT[checker.convention].get(done.returncode, Verdict.SE)


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
    os.makedirs(folder, exist_ok=True)
    if checker.language == "python":
        path = os.path.join(folder, "checker.py")
        with open(path, "w") as f:
            f.write(checker.source)
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
    return [binary]


def _scratch_root() -> str:
    global _scratch
    with _lock:
        if _scratch is None:
            _scratch = tempfile.mkdtemp(prefix="mc-checkers-")
            atexit.register(shutil.rmtree, _scratch, True)
        return _scratch
