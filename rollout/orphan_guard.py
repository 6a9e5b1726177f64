"""Run a server command that dies with the process that started it: `python orphan_guard.py PARENT_PID -- cmd...`.

Servers run in a session of their own (so a stop can signal the whole group), which also means nothing
stops them when their starter dies: a SIGKILLed driver's Ray actors go, their servers stay. The kernel's
PR_SET_PDEATHSIG does not help here: it fires when the *thread* that forked exits, and Ray actor methods
run on threads that come and go.

This program forks a watchdog and then execs the command in its own place, so the server keeps the pid,
exit status and process group its starter sees today. The watchdog stays in the server's process group and
watches two processes: PARENT_PID (through a pidfd, so a reused pid cannot fool it) and the server, its
own parent. When the server exits first, the watchdog leaves quietly. When PARENT_PID exits first, it
SIGTERMs the server's group, waits a grace period, then SIGKILLs the group (itself included).
Standard library only: it starts with `python -I`, outside any project environment.
"""
from __future__ import annotations

import os
import select
import signal
import sys
import time

POLL_S = 0.5
GRACE_S = 5.0
EXIT_USAGE = 2
EXIT_PARENT_GONE = 3


class ParentWatch:
    """Whether one process has exited: a pidfd where the kernel has them, else polling its pid."""

    def __init__(self, pid: int):
        self.pid = pid
        try:
            self._pidfd: int | None = os.pidfd_open(pid)
        except (AttributeError, OSError):  # no pidfd_open before Linux 5.3, or a seccomp policy refusing it
            self._pidfd = None

    def wait_gone(self, timeout_s: float) -> bool:
        if self._pidfd is not None:
            readable, _, _ = select.select([self._pidfd], [], [], timeout_s)
            return bool(readable)
        time.sleep(timeout_s)
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        return False


def watch(parent: ParentWatch, server_pid: int, grace_s: float = GRACE_S) -> None:
    """The watchdog's life: return when the server goes first; stop the server's group when the parent does."""
    # stop_process SIGTERMs the whole group: that signal is for the server; this process leaves once it is gone
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while os.getppid() == server_pid:
        if parent.wait_gone(POLL_S):
            _stop_group(parent.pid, server_pid, grace_s)
            return


def _stop_group(parent_pid: int, server_pid: int, grace_s: float) -> None:
    print(f"orphan_guard: the starting process {parent_pid} is gone; stopping server {server_pid} and its group",
          file=sys.stderr, flush=True)
    group = os.getpgid(0)
    os.killpg(group, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while os.getppid() == server_pid and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(group, signal.SIGKILL)  # what is left of the group (the server's children, this watchdog)


def _restore_signals() -> None:
    # Python ignores these at startup and an exec keeps ignored signals: give the server the defaults, as
    # subprocess.Popen(restore_signals=True) does.
    for name in ("SIGPIPE", "SIGXFZ", "SIGXFSZ"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--" or not argv[0].isdigit():
        print("usage: orphan_guard.py PARENT_PID -- command [args...]", file=sys.stderr)
        return EXIT_USAGE
    parent_pid, command = int(argv[0]), argv[2:]
    parent = ParentWatch(parent_pid)
    # Checked after the pidfd is open: if the parent is still ours now, the pidfd is the live parent's.
    if os.getppid() != parent_pid:
        print(f"orphan_guard: the starting process {parent_pid} exited before {command[0]} started",
              file=sys.stderr)
        return EXIT_PARENT_GONE
    server_pid = os.getpid()
    if os.fork() == 0:
        try:
            watch(parent, server_pid)
        finally:
            os._exit(0)
    _restore_signals()
    try:
        os.execvp(command[0], command)
    except OSError as e:
        print(f"orphan_guard: cannot run {command[0]}: {e}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
