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
(Zygote.run_interactive). The interactor is the problem's own program, trusted but still sandboxed: it runs
on the judging side as a checker does (judge/checker.py: prepared once per source and cached, then started
by checker.start_trusted: rlimits through prlimit, its own session killed with its group, and when the
judge is root another user than root and the submissions' nobody, no network, a folder only it can read;
see that module for where this falls short), never in the zygote, because it reads the test's answer,
which must never enter the zygote's memory; and the submission cannot see its folder (the zygote's private
view of the disk) nor reach it through /proc (another user).

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
    interactor (SE) if it outlives the deadline. Until the interactor exits it holds a read end of both pipes:
    of the submission's output and of its input, each reporting a hang-up once its writer (the submission,
    the interactor) has closed it, which is how a side's end reaches the other.

    It never reads the submission's input while the submission may still read it. Once the submission has
    ended (submission_ended(): the zygote answered, so its child is gone and nothing else reads that pipe),
    it reads and discards whatever the interactor still writes there, so the interactor neither blocks on a
    full pipe (a deadlock: killed at the deadline, SE for a correct submission) nor gets EPIPE (an interactor
    crashing on that would turn the submission's own early exit into SE); it then reads the end of the
    submission's output and gives its verdict. Once the interactor exits both are closed, so a submission
    writing to an interactor that has gone gets EPIPE.

    The interactor's exit is seen through a pidfd, or, where the kernel has no pidfd_open (before Linux 5.3),
    by polling waitpid every POLL_S."""

    POLL_S = 0.005

    def __init__(self, interactor: subprocess.Popen, submission_output: int, submission_input: int,
                 deadline: float) -> None:
        self.interactor = interactor
        self.deadline = deadline
        self.returncode: int | None = None  # None: killed at the deadline (or the watch itself failed)
        self.interactor_first = False
        self.error: BaseException | None = None
        self._output = submission_output
        self._input = submission_input
        self._ended_r, self._ended_w = -1, -1
        try:
            self._ended_r, self._ended_w = os.pipe()  # the write end is closed when the submission has ended
            self._thread = threading.Thread(target=self._watch, name="mc-judge-interaction", daemon=True)
            self._thread.start()
        except BaseException:
            self._close(self._ended_w)
            self._finish(exited=False)
            raise

    def submission_ended(self) -> None:
        """The submission's child is gone: what the interactor still writes to it can be thrown away."""
        self._close(self._ended_w)
        self._ended_w = -1

    def wait(self) -> None:
        self.submission_ended()
        self._thread.join()

    def _watch(self) -> None:
        exited = False
        pidfd = None
        try:
            pidfd = _pidfd_open(self.interactor.pid)
            poller = select.poll()
            if pidfd is not None:
                poller.register(pidfd, select.POLLIN)
            hang_ups = {self._output: "submission", self._input: "interactor"}
            for fd in hang_ups:
                poller.register(fd, select.POLLHUP)  # reported once every write end is closed; data stays unread
            poller.register(self._ended_r, select.POLLHUP)
            draining = False
            first = None
            while not exited:
                remaining = self.deadline - time.monotonic()
                if remaining <= 0:
                    break
                wait_s = remaining if pidfd is not None else min(remaining, self.POLL_S)
                events = dict(poller.poll(wait_s * 1000))
                exited = pidfd in events if pidfd is not None else self.interactor.poll() is not None
                if self._ended_r in events:
                    poller.unregister(self._ended_r)
                    draining = True
                    if self._input in hang_ups:
                        poller.modify(self._input, select.POLLIN)
                hung_up = {fd for fd, mask in events.items()
                           if fd in hang_ups and mask & (select.POLLHUP | select.POLLERR)}
                if draining and self._input in events and self._input not in hung_up:
                    os.read(self._input, 1 << 16)  # what the interactor writes to a submission that has ended
                ended = {hang_ups[fd] for fd in hung_up} | ({"interactor"} if exited else set())
                for fd in hung_up:
                    poller.unregister(fd)
                    del hang_ups[fd]
                if first is None and ended:
                    first = "submission" if "submission" in ended else "interactor"  # at once: the submission
            self.interactor_first = first == "interactor"
        except BaseException as e:  # the watch must never leave the interactor running or its fds open
            self.error = e
            exited = False
        finally:
            self._close(pidfd)
            self._finish(exited)

    def _finish(self, exited: bool) -> None:
        for fd in (self._output, self._input, self._ended_r):
            self._close(fd)
        _kill_session(self.interactor.pid)
        returncode = self.interactor.wait()
        self.returncode = returncode if exited else None

    @staticmethod
    def _close(fd: int | None) -> None:
        if fd is not None and fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass


def _pidfd_open(pid: int) -> int | None:
    """A pidfd for `pid`, or None where the kernel or Python has none (then the watch polls waitpid)."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


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
        opened: list[int] = []
        process = None
        try:
            opened += os.pipe()  # the submission's stdout: to_interactor_r, to_interactor_w
            opened += os.pipe()  # the interactor's stdout: to_submission_r, to_submission_w
            to_interactor_r, to_interactor_w, to_submission_r, to_submission_w = opened
            # SIGPIPE stays ignored (restore_signals=False): should the interactor ever write to a pipe with
            # no reader (the watch drains the submission's input once it ended, see InteractionWatch), it
            # gets EPIPE and can still give its verdict, instead of dying as a judge failure.
            process = checkers.start_trusted(command, arguments, work, cpu_s, stdin=to_interactor_r,
                                             stdout=to_submission_w, stderr=subprocess.DEVNULL,
                                             restore_signals=False)
            os.close(to_submission_w)
            opened.remove(to_submission_w)
            watched = os.dup(to_submission_r)
        except OSError as e:
            for fd in opened:
                os.close(fd)
            if process is not None:
                _kill_session(process.pid)
                process.wait()
            return Verdict.SE, _not_run(f"the problem's interactor cannot be started: {e}")
        # From here the watch owns to_interactor_r and the copy of to_submission_r (it closes them), and the
        # zygote handle the two ends the submission uses.
        watch = InteractionWatch(process, to_interactor_r, watched,
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
        arguments = [input_path, os.path.join(work, "output"), answer_path]
    else:
        feedback = os.path.join(work, "feedback")
        os.mkdir(feedback)
        arguments = [input_path, answer_path, feedback + "/"]
    checkers.hand_over(work)
    return arguments


def _not_run(reason: str) -> Outcome:
    return Outcome(ready=False, timed_out=False, output_exceeded=False, exit_code=None, signal=None, stdout=b"",
                   stderr=f"judge: {reason}".encode(), payload=b"", wall_s=0.0, cpu_s=0.0)


def _kill_session(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
