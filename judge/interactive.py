"""Interactive problems: the submission and the problem's interactor run at the same time with their standard
streams cross-connected (the submission's stdout is the interactor's stdin, the interactor's stdout is the
submission's stdin), and the interactor's exit code gives the verdict.

  kattis   `interactor INPUT_FILE ANSWER_FILE FEEDBACK_DIR/`; exit 42 accepted, 43 wrong answer
           (problemtools' `validation: custom interactive`, 2023 format `type: interactive`)
  testlib  `interactor INPUT_FILE OUTPUT_FILE ANSWER_FILE` (testlib.h's registerInteraction; OUTPUT_FILE is
           where it may leave a log for a checker, which the judge does not run); exit 0 accepted, 1, 2, 4,
           7 and 8 wrong answer (Codeforces interactors are written this way)
Any other exit, a signal, or an interactor still running at the deadline is the interactor's failure (SE).

Where each side runs. The submission runs in a zygote child exactly as in any other test (sandbox,
rlimits, seccomp, its time limit); its two pipe ends are handed to the zygote by fd passing
(Zygote.run_interactive). The interactor is the problem's own program, trusted but still limited: it runs
here in the judging process's side as a checker does (judge/checker.py: prepared once per source and
cached, then a subprocess under prlimit, its own session, killed with its group), never in the zygote,
because it reads the test's answer, which must never enter the zygote's memory.

Limits. One deadline covers the pair: the submission's wall clock (Limits.wall_limit_s, enforced by the
zygote) and its CPU limit as in any test; the interactor must have ended REACTION_S after that same
deadline (time to react to the submission's end), under a CPU limit of max(10 s, 2x the time limit).
So a submission that waits forever (it never flushed, it reads what never comes) is TLE, and an
interactor that hangs is SE.

The verdict, following problemtools (judge/execute.py `_run_interactive` in Kattis/problemtools):
  1. the interactor did not end by the deadline, or the submission's sandbox failed: SE;
  2. the interactor ended first (the submission was still running): wrong answer is WA, and anything but
     accepted is SE; accepted goes on to 3;
  3. the submission's own failure (TLE, MLE, RE), as for any test;
  4. else the interactor's verdict: AC, WA, or SE for any other exit.
One choice differs from problemtools: when the submission failed first, its failure stands even if the
interactor then exits with a code that is not a verdict (it often crashes on the closed pipe), where
problemtools reports a judge error. "First" is observed, not guessed from clocks: a side has ended when
its output pipe hangs up (it exited or closed its stdout, which is how the other side learns of it; the
interactor's exit counts too), and a watcher takes whichever the kernel reports first; both at once count
as the submission first.
"""
from __future__ import annotations

import os
import select
import signal
import subprocess
import tempfile
import threading
import time

from judge import checker as checkers
from judge.executor import Outcome
from judge.problem import Interactor, TestCase
from judge.sandbox import Limits
from judge.verdict import Verdict, verdict_of_run
from judge.zygote import Zygote

REACTION_S = 1.0
_EXIT_CODES = checkers.VERDICTS_BY_EXIT  # the same exit conventions as checkers


class InteractionWatch:
    """Watches, from its own thread, which side stopped talking first and the interactor's exit, and ends the
    interactor (SE) if it outlives the deadline. Until the interactor exits it holds a read end of both pipes
    (never reading): of the submission's output and of its input, each reporting a hang-up once its writer
    (the submission, the interactor) has closed it, which is how a side's end reaches the other. Holding the
    submission's input also means that what the interactor still writes after the submission ended fills
    the pipe instead of failing with EPIPE (an interactor crashing on that would turn the submission's own
    early exit into SE). Once the interactor exits both are closed, so a submission writing to an
    interactor that has gone gets EPIPE."""

    def __init__(self, interactor: subprocess.Popen, submission_output: int, submission_input: int,
                 deadline: float) -> None:
        self.interactor = interactor
        self.deadline = deadline
        self.returncode: int | None = None  # None: killed at the deadline
        self.interactor_first = False
        self._output = submission_output
        self._input = submission_input
        self._thread = threading.Thread(target=self._watch, name="mc-judge-interaction", daemon=True)
        self._thread.start()

    def wait(self) -> None:
        self._thread.join()

    def _watch(self) -> None:
        pidfd = os.pidfd_open(self.interactor.pid)
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        hang_ups = {self._output: "submission", self._input: "interactor"}
        for fd in hang_ups:
            poller.register(fd, select.POLLHUP)  # reported once every write end is closed; data stays unread
        first = None
        exited = False
        try:
            while not exited:
                remaining = self.deadline - time.monotonic()
                if remaining <= 0:
                    break
                events = {fd for fd, _ in poller.poll(remaining * 1000)}
                exited = pidfd in events
                ended = {hang_ups[fd] for fd in events if fd in hang_ups} | ({"interactor"} if exited else set())
                for fd in events & hang_ups.keys():
                    poller.unregister(fd)
                    del hang_ups[fd]
                if first is None and ended:
                    first = "submission" if "submission" in ended else "interactor"  # at once: the submission
            self.interactor_first = first == "interactor"
        finally:
            for fd in (pidfd, self._output, self._input):
                os.close(fd)
            _kill_session(self.interactor.pid)
            returncode = self.interactor.wait()
            self.returncode = returncode if exited else None


def judge_test(zygote: Zygote, interactor: Interactor, test: TestCase, limits: Limits) -> tuple[Verdict, Outcome]:
    """Run one test of an interactive problem on `zygote` (a submission is loaded there): the verdict and the
    submission's Outcome (SE and an Outcome saying why when the interactor cannot be prepared or started).
    Raises ZygoteError when the zygote fails."""
    try:
        command = checkers._command_for(interactor)
    except checkers.CheckerError as e:
        return Verdict.SE, _not_run(f"the problem's interactor cannot be prepared: {e}")
    with tempfile.TemporaryDirectory(prefix="mc-interact-", dir=checkers._scratch_root()) as work:
        arguments = _arguments(interactor, work, test)
        cpu_s = max(checkers.CHECKER_MIN_TIME_S, 2 * limits.time_limit_s)
        to_interactor_r, to_interactor_w = os.pipe()  # the submission's stdout
        to_submission_r, to_submission_w = os.pipe()  # the interactor's stdout
        try:
            # SIGPIPE stays ignored (restore_signals=False): an interactor writing to a submission that has
            # ended gets EPIPE and can still give its verdict, instead of dying as a judge failure.
            process = subprocess.Popen([*checkers._limits(cpu_s), *command, *arguments], stdin=to_interactor_r,
                                       stdout=to_submission_w, stderr=subprocess.DEVNULL, cwd=work,
                                       start_new_session=True, restore_signals=False)
        except OSError as e:
            for fd in (to_interactor_r, to_interactor_w, to_submission_r):
                os.close(fd)
            return Verdict.SE, _not_run(f"the problem's interactor cannot be started: {e}")
        finally:
            os.close(to_submission_w)
        watch = InteractionWatch(process, to_interactor_r, os.dup(to_submission_r),
                                 time.monotonic() + limits.wall_limit_s + REACTION_S)
        try:
            outcome = zygote.run_interactive(to_submission_r, to_interactor_w, limits.wall_limit_s)
        except BaseException:
            _kill_session(process.pid)  # the watch then sees it end
            raise
        finally:
            watch.wait()
    return interactive_verdict(outcome, limits.time_limit_s, interactor.convention, watch.returncode,
                               watch.interactor_first), outcome


def interactive_verdict(outcome: Outcome, time_limit_s: float, convention: str, interactor_exit: int | None,
                        interactor_first: bool) -> Verdict:
    """The rule in the module's docstring. `interactor_exit` is its return code (negative: a signal), None when
    it did not end by the deadline."""
    if interactor_exit is None:
        return Verdict.SE
    said = _EXIT_CODES[convention].get(interactor_exit)
    failure = verdict_of_run(outcome, time_limit_s)
    if failure is Verdict.SE:
        return Verdict.SE
    if interactor_first and said is not Verdict.AC:
        return said or Verdict.SE
    return failure or said or Verdict.SE


def _arguments(interactor: Interactor, work: str, test: TestCase) -> list[str]:
    input_path = checkers._write(work, "input", test.input)
    answer_path = checkers._write(work, "answer", test.output)
    if interactor.convention == "testlib":
        return [input_path, os.path.join(work, "output"), answer_path]
    feedback = os.path.join(work, "feedback")
    os.mkdir(feedback)
    return [input_path, answer_path, feedback + "/"]


def _not_run(reason: str) -> Outcome:
    return Outcome(ready=False, timed_out=False, output_exceeded=False, exit_code=None, signal=None, stdout=b"",
                   stderr=f"judge: {reason}".encode(), payload=b"", wall_s=0.0, cpu_s=0.0)


def _kill_session(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
