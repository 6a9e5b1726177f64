"""Run one test in a disposable child process: the parent half (fork, feed stdin, collect output under a
cap, enforce the wall clock, kill the process group, reap) and the child half (enter the sandbox, then
run the Python harness or exec the compiled binary).

It runs inside the zygote (judge/zygote.py), a single-threaded process, so fork is safe and cheap.
Expected outputs never come here: the child only ever sees the test input.

Child file descriptors: 0 stdin, 1 stdout, 2 stderr (pipes), 3 the control pipe and 4 the go pipe. A
child is forked ahead of its test, sets up its sandbox, then waits for GO on fd 4, so no submission code
runs before its test starts. It writes READY on fd 3 just before running the submission: anything that
goes wrong before READY is a sandbox error (SE), anything after it is the submission's doing.
Function-call results travel on the control pipe too, as JSON written by the child (numpy values, Decimal,
Fraction and sets turned into plain numbers and lists there): the judging process only ever parses JSON.
A Python child ends the way the interpreter does (non-daemon threads, atexit, buffered writers flushed).

Two implementations of the same steps: `FastChild` does the fork, the child's set-up up to GO (and, for a
compiled submission, READY and the exec) and the parent's per-test bookkeeping in C (judge/_fastchild.c,
built by setup.py when a compiler is there), so that no Python code runs between the fork and the
submission's harness; `Child` does them in Python, for any `child_main`, and is what the zygote uses
when the extension is missing (or MC_JUDGE_FASTCHILD=0). Both give the same Outcome.
"""
from __future__ import annotations

import atexit
import builtins
import ctypes
import fcntl
import gc
import io
import itertools
import json
import os
import select
import shutil
import signal
import sys
import time
import traceback
import types
import typing
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from types import CodeType
from typing import Callable, NoReturn, Sequence

from judge import sandbox
from judge.sandbox import Limits, SeccompProgram

try:
    from judge import _fastchild
except ImportError:  # built by setup.py when a C compiler is there (optional): the Python path then
    _fastchild = None
# The interface judge/_fastchild.c says it has (FASTCHILD_ABI); a build from an older source is not used.
FASTCHILD_ABI = 3
if _fastchild is not None and getattr(_fastchild, "ABI", None) != FASTCHILD_ABI:
    _fastchild = None

READY = b"R"
GO = b"G"
EXIT_MEMORY = 203  # the harness's exit code for MemoryError; forging it can only turn RE into MLE
EXIT_SETUP = 212
_CONTROL_FD = 3
_GO_FD = 4
_STDERR_KEEP = 8192
_CHUNK = 1 << 16
_CPU_WAIT_STEP_S = 0.001  # a deadline moves for waits longer than this (fewer /proc reads); as in C
_PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = 1031
# Address space the C++ runtime maps before main (loader, libc, libstdc++), granted on top of the limit.
_NATIVE_RUNTIME_BYTES = 64 << 20


@dataclass
class Outcome:
    """What one child run did, before any comparison."""

    ready: bool
    timed_out: bool
    output_exceeded: bool
    exit_code: int | None
    signal: int | None
    stdout: bytes
    stderr: bytes
    payload: bytes
    wall_s: float
    cpu_s: float

    def to_wire(self) -> tuple:
        """The fields in order, for the zygote's reply (a tuple pickles cheaper than the dataclass);
        Outcome(*fields) rebuilds it."""
        return (self.ready, self.timed_out, self.output_exceeded, self.exit_code, self.signal, self.stdout,
                self.stderr, self.payload, self.wall_s, self.cpu_s)


class Child:
    """A forked child that sets itself up (sandbox included) and waits for its input. Forking ahead lets
    the next test's child set itself up on another core while this test runs."""

    def __init__(self, child_main: Callable[[int], NoReturn], workdir_root: str | None,
                 stdio: Sequence[int] | None = None) -> None:
        if stdio is None:
            in_r, self.in_w = os.pipe()
            self.out_r, out_w = os.pipe()
        else:
            # An interactive test (judge/interactive.py): the child's stdin and stdout are the interactor's
            # pipes, given as (stdin, stdout) and closed here after the fork. This side keeps an input that
            # is already empty and an output already at its end, so start() and finish() run unchanged.
            in_r, out_w = stdio
            self.in_w, self.out_r = _ended_pipes()
        self.err_r, err_w = os.pipe()
        self.ctl_r, ctl_w = os.pipe()
        go_r, self.go_w = os.pipe()
        zygote_pid = os.getpid()
        try:
            fcntl.fcntl(self.in_w, _F_SETPIPE_SZ, _PIPE_SIZE)  # most inputs then fit in one write
        except OSError:
            pass
        self.pid = os.fork()
        if self.pid == 0:
            _child(child_main, workdir_root, zygote_pid, in_r, out_w, err_w, ctl_w, go_r)
        for fd in (in_r, out_w, err_w, ctl_w, go_r):
            os.close(fd)
        self.workdir = f"{workdir_root}/{self.pid}" if workdir_root is not None else None

    def start(self, stdin_data: bytes) -> None:
        """Hand the child its input: the test starts now (the clock too), not at the fork."""
        self.started = time.monotonic()
        self.pending = _prefill(self.in_w, stdin_data)
        if not self.pending:
            # Closed before the zygote forks the next child, which would otherwise hold this write end
            # and delay the end of input a program waits for.
            os.close(self.in_w)
            self.in_w = -1
        try:
            os.write(self.go_w, GO)
        except BrokenPipeError:
            pass  # the child is already gone; finish() reports how it ended
        os.close(self.go_w)

    def finish(self, wall_limit_s: float, output_limit: int, max_cpu_wait_s: float | None = None) -> Outcome:
        """Collect everything under the limits, then leave no process behind. The wall-clock deadline moves
        by the time the child waited for a CPU that other work held, up to max_cpu_wait_s (default: the wall
        limit again)."""
        max_cpu_wait_s = wall_limit_s if max_cpu_wait_s is None else max_cpu_wait_s
        try:
            collected = _collect(self.pid, self.started + wall_limit_s, max_cpu_wait_s, self.in_w, self.pending,
                                 self.out_r, self.err_r, self.ctl_r, output_limit)
        finally:
            _kill_group(self.pid)
        status, usage = _reap(self.pid)
        wall = time.monotonic() - self.started
        self._cleanup()
        stdout, stderr, control, timed_out, exceeded = collected
        return Outcome(
            ready=control.startswith(READY),
            timed_out=timed_out,
            output_exceeded=exceeded,
            exit_code=os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
            signal=os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
            stdout=stdout,
            stderr=stderr,
            payload=control[len(READY):],
            wall_s=wall,
            cpu_s=usage.ru_utime + usage.ru_stime,
        )

    def discard(self) -> None:
        """Kill an unused child (its submission stopped early)."""
        _kill_group(self.pid)
        for fd in (self.in_w, self.out_r, self.err_r, self.ctl_r, self.go_w):
            os.close(fd)
        _reap(self.pid)
        self._cleanup()

    def _cleanup(self) -> None:
        if self.workdir is not None:
            _remove_workdir(self.workdir)


class FastChild:
    """A Child whose fork, set-up and bookkeeping run in C (judge/_fastchild.c): the same steps in the same
    order (executor._child, enter_sandbox, _collect, _reap), for a program whose sandbox is described by
    its `fast_spec`. Only in a single-threaded process (the zygote): the C fork skips CPython's at-fork
    machinery. The zygote's test loop runs in C too (_fastchild.serve); this class serves the rest (the
    first child after a load, interactive tests) with the same functions."""

    def __init__(self, handle: tuple, workdir_root: bytes | None) -> None:
        self.handle = handle  # (pid, in_w, out_r, err_r, ctl_r, go_w), as _fastchild returns it
        self.pid = handle[0]
        self.workdir_root = workdir_root

    @classmethod
    def spawn(cls, program: "PythonProgram | NativeProgram", spec: tuple, zygote_pid: int,
              workdir_root: bytes | None, stdio: Sequence[int] | None = None) -> "FastChild":
        handle = _fastchild.spawn(None if stdio is None else tuple(stdio), workdir_root, zygote_pid, *spec)
        if handle is None:
            python_child(program)  # the child, in its sandbox, GO received; never returns
        return cls(handle, workdir_root)

    def start(self, stdin_data: bytes) -> None:
        self.started = time.monotonic()
        written = _fastchild.start(self.handle, stdin_data)
        self.pending = stdin_data[written:]
        # start closed the input when everything fit, and the go pipe
        pid, in_w, out_r, err_r, ctl_r, _ = self.handle
        self.handle = (pid, -1 if written == len(stdin_data) else in_w, out_r, err_r, ctl_r, -1)

    def finish(self, wall_limit_s: float, output_limit: int, max_cpu_wait_s: float | None = None) -> Outcome:
        max_cpu_wait_s = wall_limit_s if max_cpu_wait_s is None else max_cpu_wait_s
        stdout, stderr, control, timed_out, exceeded, status, cpu, end = _fastchild.finish(
            self.handle, self.started + wall_limit_s, max_cpu_wait_s, self.pending, output_limit, _STDERR_KEEP,
            self.workdir_root)
        return Outcome(
            ready=control.startswith(READY),
            timed_out=bool(timed_out),
            output_exceeded=bool(exceeded),
            exit_code=os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
            signal=os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
            stdout=stdout,
            stderr=stderr,
            payload=control[len(READY):],
            wall_s=end - self.started,
            cpu_s=cpu,
        )

    def discard(self) -> None:
        _kill_group(self.pid)
        for fd in self.handle[1:]:
            if fd >= 0:
                os.close(fd)
        _reap(self.pid)
        if self.workdir_root is not None:
            _remove_workdir(os.path.join(os.fsdecode(self.workdir_root), str(self.pid)))


def fast_path_available() -> bool:
    """Whether FastChild can be used here: the extension is built, it is not turned off
    (MC_JUDGE_FASTCHILD=0), and this process has a single thread (a C fork skips CPython's at-fork
    machinery, which only other threads would need)."""
    if _fastchild is None or os.environ.get("MC_JUDGE_FASTCHILD", "1") == "0":
        return False
    with open("/proc/self/status") as f:
        return any(line.split() == ["Threads:", "1"] for line in f)


def python_child(program: "PythonProgram") -> NoReturn:
    """The rest of enter_sandbox for a Python submission in a FastChild: its input if it needs it, READY,
    the harness."""
    try:
        program.prepare()
        os.write(_CONTROL_FD, READY)
        program.start()
    except BaseException as e:  # noqa: BLE001 - before READY a judge failure (SE); start() never returns
        try:
            os.write(2, f"judge: sandbox setup failed: {e!r}\n".encode())
        finally:
            os._exit(EXIT_SETUP)
    os._exit(EXIT_SETUP)


def run_in_child(child_main: Callable[[int], NoReturn], stdin_data: bytes, wall_limit_s: float,
                 output_limit: int, workdir_root: str | None) -> Outcome:
    """Fork a child that runs `child_main(zygote_pid)` (which must not return) in `workdir_root/<pid>`
    when given, and collect what it does."""
    child = Child(child_main, workdir_root)
    child.start(stdin_data)
    return child.finish(wall_limit_s, output_limit)


def _ended_pipes() -> tuple[int, int]:
    """A write end nobody reads and a read end nobody writes: an empty input and an output at its end."""
    unread_r, unread_w = os.pipe()
    unwritten_r, unwritten_w = os.pipe()
    os.close(unread_r)
    os.close(unwritten_w)
    return unread_w, unwritten_r


def _prefill(in_w: int, data: bytes) -> bytes:
    """Write what fits in the pipe now; close it when everything fit, so the loop below only reads.
    Returns what is left to write."""
    os.set_blocking(in_w, False)
    try:
        written = os.write(in_w, data) if data else 0
    except (BlockingIOError, BrokenPipeError):
        written = 0
    return data[written:]


def _child(child_main, workdir_root, zygote_pid, in_r, out_w, err_w, ctl_w, go_r) -> NoReturn:
    try:
        os.setsid()
        os.dup2(in_r, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.dup2(ctl_w, _CONTROL_FD)
        os.dup2(go_r, _GO_FD)
        os.closerange(_GO_FD + 1, 1 << 16)
        if workdir_root is not None:
            workdir = f"{workdir_root}/{os.getpid()}"
            os.mkdir(workdir, 0o700)
            sandbox.give_to_sandbox_user(workdir)
            os.chdir(workdir)
        child_main(zygote_pid)
    except BaseException as e:  # noqa: BLE001 - anything here is a judge failure, reported as SE
        try:
            os.write(2, f"judge: sandbox setup failed: {e!r}\n".encode())
        finally:
            os._exit(EXIT_SETUP)
    os._exit(EXIT_SETUP)


def cpu_wait_s(pid: int) -> float:
    """Seconds the most delayed thread of `pid` has spent runnable but waiting for a CPU (the second field
    of /proc/PID/task/TID/schedstat); 0.0 when the kernel does not say. As judge/_fastchild.c's cpu_wait_s."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0
    most = 0
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat", "rb") as f:
                most = max(most, int(f.read().split()[1]))
        except (OSError, ValueError, IndexError):
            continue
    return most * 1e-9


def _collect(pid, deadline, max_cpu_wait, in_w, pending, out_r, err_r, ctl_r, output_limit):
    buffers = {out_r: bytearray(), err_r: bytearray(), ctl_r: bytearray()}
    poller = select.poll()
    for fd in buffers:
        poller.register(fd, select.POLLIN)
    if pending:
        poller.register(in_w, select.POLLOUT)
    pidfd = os.pidfd_open(pid)
    poller.register(pidfd, select.POLLIN)
    open_readers, exited, timed_out, exceeded = len(buffers), False, False, False
    extended = 0.0
    try:
        while open_readers or not exited:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                allowed = min(cpu_wait_s(pid), max_cpu_wait)
                if allowed - extended > _CPU_WAIT_STEP_S:  # time a busy machine took: the deadline moves
                    deadline += allowed - extended
                    extended = allowed
                    continue
                timed_out = True
                break
            for fd, _ in poller.poll(remaining * 1000):
                if fd == pidfd:
                    exited = True
                    poller.unregister(pidfd)
                elif fd == in_w:
                    pending = _feed(in_w, pending)
                    if not pending:
                        poller.unregister(in_w)
                        os.close(in_w)
                        in_w = -1
                else:
                    chunk = os.read(fd, _CHUNK)
                    if not chunk:
                        poller.unregister(fd)
                        open_readers -= 1
                    elif fd == err_r:
                        if len(buffers[fd]) < _STDERR_KEEP:
                            buffers[fd] += chunk[: _STDERR_KEEP - len(buffers[fd])]
                    else:
                        buffers[fd] += chunk
                        exceeded = exceeded or len(buffers[fd]) > output_limit
            if exceeded:
                break
    finally:
        for fd in (pidfd, in_w, out_r, err_r, ctl_r):
            if fd >= 0:
                os.close(fd)
    return bytes(buffers[out_r]), bytes(buffers[err_r]), bytes(buffers[ctl_r]), timed_out, exceeded


def _feed(in_w: int, pending: bytes) -> bytes:
    try:
        return pending[os.write(in_w, pending[:_CHUNK]):]
    except BlockingIOError:
        return pending
    except BrokenPipeError:
        return b""


def _kill_group(pid: int) -> None:
    """The child's process group, and the child itself: one killed before its setsid is not yet a group."""
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _reap(pid: int):
    _, status, usage = os.wait4(pid, 0)
    # The zygote is a subreaper: anything the child left behind in its process group (it cannot fork,
    # but be certain) is ours to reap. Only that group: the next test's child is ours too.
    while True:
        try:
            other, _ = os.waitpid(-pid, os.WNOHANG)
        except ChildProcessError:
            break
        if other == 0:
            break
    return status, usage


def _remove_workdir(path: str) -> None:
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
    except OSError:
        shutil.rmtree(path, ignore_errors=True)


# ---- the child half -----------------------------------------------------------------------------------

def enter_sandbox(program: "PythonProgram | NativeProgram", limits: Limits, zygote_pid: int) -> NoReturn:
    """Runs in the child: limits, user, filter, then (input permitting) READY and the submission. All of
    it before the input arrives except what needs the input (a function call's arguments)."""
    sandbox.apply_rlimits(limits, program.address_space(limits))
    sandbox.drop_privileges()
    sandbox.die_with_parent(zygote_pid)
    program.seccomp.load()
    if os.read(_GO_FD, 1) != GO:
        os._exit(EXIT_SETUP)  # discarded: its submission stopped before this test
    os.close(_GO_FD)
    program.prepare()
    os.write(_CONTROL_FD, READY)
    program.start()


_ARGV = ["solution.py"]  # a submission's sys.argv (PythonProgram.make_main)
_MAIN: list[types.ModuleType] = []


def _main_module() -> types.ModuleType:
    """The __main__ module every submission runs in, built once per process. Only children run code in it,
    and what a child changes is its own copy (copy-on-write), so in this process (the zygote) it stays as
    built, with the preset names only; one module for all, rather than one per submission, spares each
    load the copy of the preset names (their reference counts: ~100 of the zygote's pages written, which
    its children then share)."""
    if not _MAIN:
        _MAIN.append(_new_main_module())
    return _MAIN[0]


def _new_main_module() -> types.ModuleType:
    module = types.ModuleType("__main__")
    module.__dict__.update(_TYPING_NAMES)
    module.__dict__["__builtins__"] = builtins
    return module

# LiveCodeBench runs solutions with `from typing import *` (and more) in scope; LeetCode code relies on it.
_TYPING_NAMES = {name: getattr(typing, name) for name in typing.__all__ if hasattr(typing, name)}


class PythonProgram:
    """A Python 3 submission, compiled once in the zygote, run as __main__ in each child."""

    def __init__(self, code: CodeType, kind: str, fn_name: str | None, seccomp: SeccompProgram,
                 baseline_address_space: int, module: types.ModuleType | None = None) -> None:
        self.code = code
        self.kind = kind
        self.fn_name = fn_name
        self.seccomp = seccomp
        self._baseline = baseline_address_space
        self._args: list | None = None
        # Each child only runs the code in it; by default the one module of every submission (_main_module).
        self.module = module or _main_module()
        self.preset_names = len(self.module.__dict__)  # the submission's own globals come after these
        # The zygote's objects so far (this module and its namespace included) are put out of the
        # collector's sight (gc.freeze), so that the child's collection at exit visits only what the
        # submission made, and writes no page of the zygote's: once per submission here, not per test.
        gc.collect()
        gc.freeze()

    def address_space(self, limits: Limits) -> int:
        # The interpreter and preloaded modules are already mapped; the limit is for the submission.
        return self._baseline + (limits.memory_limit_mb << 20)

    def fast_spec(self, limits: Limits) -> tuple:
        """The sandbox as judge/_fastchild.c's spawn takes it (after stdio, folder and zygote pid)."""
        return _fast_spec(self, limits, None)

    def prepare(self) -> None:
        if self.kind == "function":
            text = _read_all(0).decode()
            self._args = [json.loads(line) for line in text.split("\n") if line.strip()]

    def start(self) -> NoReturn:
        os._exit(self.run_as_main())

    def run_as_main(self) -> int:
        """The submission as __main__, then the interpreter's exit; returns the exit status."""
        self.make_main()
        _fresh_stdio()
        atexit._clear()  # handlers a preloaded module registered in the zygote are not the submission's
        status = self._run()
        _interpreter_exit(self.module.__dict__, self.preset_names)
        return status

    def make_main(self) -> None:
        """The submission's module as __main__, its argv. The zygote does it at load, so that a child
        finds them in place and writes nothing (this page of sys.modules and sys's dict stay shared)."""
        if sys.modules.get("__main__") is not self.module:
            sys.modules["__main__"] = self.module
        if sys.argv is not _ARGV:
            sys.argv = _ARGV

    def _run(self) -> int:
        namespace = self.module.__dict__
        status = _execute(self.code, namespace)
        if status == 0 and self.kind == "function":
            status = _call_function(namespace, self.fn_name, self._args)
        return status


class NativeProgram:
    """A compiled binary (C++), exec'd by the child once the sandbox is in place; the binary inherits the
    rlimits, the user and the filter, whose only allowed execve is this one."""

    def __init__(self, path: str) -> None:
        self.path = ctypes.create_string_buffer(path.encode())
        self.seccomp = SeccompProgram(exec_path=self.path)
        self._argv = (ctypes.c_char_p * 2)(self.path.value, None)
        self._envp = (ctypes.c_char_p * 3)(b"PATH=/usr/bin:/bin", b"LANG=C.UTF-8", None)

    def address_space(self, limits: Limits) -> int:
        return (limits.memory_limit_mb << 20) + _NATIVE_RUNTIME_BYTES

    def fast_spec(self, limits: Limits) -> tuple:
        """As PythonProgram.fast_spec, with the addresses of execve's arguments (the filter's allowed path
        is this very buffer's address)."""
        exec_args = (ctypes.addressof(self.path), ctypes.addressof(self._argv), ctypes.addressof(self._envp))
        return _fast_spec(self, limits, exec_args)

    def prepare(self) -> None:
        os.set_inheritable(_CONTROL_FD, False)
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # Python ignores it; a C++ program expects the default

    def start(self) -> NoReturn:
        sandbox._libc.execve(self.path, self._argv, self._envp)
        os.write(2, f"judge: execve failed (errno {ctypes.get_errno()})\n".encode())
        os._exit(127)


def _fast_spec(program: "PythonProgram | NativeProgram", limits: Limits, exec_args: tuple | None) -> tuple:
    """rlimits, user, filter and where its pid goes, then execve's arguments (None: a Python child)."""
    return (sandbox.rlimit_values(limits, program.address_space(limits)), sandbox.sandbox_uid(),
            *program.seccomp.template(), exec_args)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, _CHUNK):
        chunks.append(chunk)
    return b"".join(chunks)


def _text_stream(fd: int, mode: str, errors: str, name: str) -> io.TextIOWrapper:
    raw = io.FileIO(fd, mode, closefd=False)
    raw.name = name
    buffered = io.BufferedReader(raw) if mode == "rb" else io.BufferedWriter(raw)
    stream = io.TextIOWrapper(buffered, encoding="utf-8", errors=errors, write_through=fd == 2)
    # The attributes Python gives its own std streams: fast-I/O templates (PyRival's FastIO) read `mode`.
    stream.mode = mode[0]
    return stream


# Built once in the zygote, which never uses them: after fork they are fresh, empty streams on the test's
# pipes (fds 0-2 are re-pointed by dup2), and the zygote's own buffered state cannot leak into a child.
_STDIO = (
    _text_stream(0, "rb", "surrogateescape", "<stdin>"),
    _text_stream(1, "wb", "surrogateescape", "<stdout>"),
    _text_stream(2, "wb", "backslashreplace", "<stderr>"),
)


# The interpreter's own streams, kept alive here: a child's first _fresh_stdio replaces them, and were
# they freed then, their finalizers (flush, close) would run in every child, about 70 page faults.
_ORIGINAL_STDIO = (sys.stdin, sys.stdout, sys.stderr, sys.__stdin__, sys.__stdout__, sys.__stderr__)


def install_stdio() -> None:
    """For the zygote, once: the submissions' streams (_STDIO) become the process's own, so that a child
    finds them in place and writes neither sys's dict nor six streams' reference counts (about 10 page
    faults a test). The zygote then flushes them after anything it may print (flush_stdio): nothing it
    wrote may wait in their buffers for a child to flush."""
    _fresh_stdio()


def flush_stdio() -> None:
    _flush_stdio()


def _fresh_stdio() -> None:
    # Assigned only when they differ: every write to a page the zygote shares costs a copy of the page.
    if (sys.stdin, sys.stdout, sys.stderr, sys.__stdin__, sys.__stdout__, sys.__stderr__) != _STDIO * 2:
        sys.stdin, sys.stdout, sys.stderr = _STDIO
        sys.__stdin__, sys.__stdout__, sys.__stderr__ = _STDIO


def _execute(code: CodeType, namespace: dict) -> int:
    try:
        exec(code, namespace)
    except SystemExit as e:
        return _exit_status(e.code)
    except MemoryError:
        return EXIT_MEMORY
    except BaseException:  # noqa: BLE001 - the submission's error, reported like Python would
        _print_traceback()
        return 1
    return 0


def _exit_status(code) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    _safe(lambda: print(code, file=sys.stderr))
    return 1


def _call_function(namespace: dict, fn_name: str, args: list) -> int:
    try:
        solution = namespace.get("Solution")
        if isinstance(solution, type) and hasattr(solution, fn_name):
            target = getattr(solution(), fn_name)
        elif callable(namespace.get(fn_name)):
            target = namespace[fn_name]
        else:
            raise NameError(f"the submission defines neither Solution.{fn_name} nor a function {fn_name}")
        result = target(*args)
    except SystemExit as e:
        return _exit_status(e.code)
    except MemoryError:
        return EXIT_MEMORY
    except BaseException:  # noqa: BLE001
        _print_traceback()
        return 1
    try:
        payload = json.dumps(result, default=_plain_value).encode()
    except (TypeError, ValueError, RecursionError, OverflowError):
        return 0  # no payload: an unserializable result cannot equal a JSON answer (WA)
    _safe(lambda: _write_all(_CONTROL_FD, payload))
    return 0


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _print_traceback() -> None:
    _safe(traceback.print_exc)


def _plain_value(value):
    """The JSON form of a result json cannot write itself (json.dumps calls this), built from the value's
    data and never from its own __eq__ or __repr__, so an object that fakes equality stays what it is.
    numpy types turn into the Python numbers and lists they hold; Decimal and Fraction into an int when
    integral, else a float (compared with the tolerance); a set into a list of its elements, sorted so
    that the same set always travels the same way (judge/compare.py says when its order matters)."""
    numpy = sys.modules.get("numpy")  # imported only if the submission imported it
    if numpy is not None and isinstance(value, (numpy.generic, numpy.ndarray)):
        return numpy.ndarray.tolist(value) if isinstance(value, numpy.ndarray) else numpy.generic.item(value)
    if isinstance(value, Decimal):
        return int(value) if value.is_finite() and value == value.to_integral_value() else float(value)
    if isinstance(value, Fraction):
        return int(value.numerator) if value.denominator == 1 else float(value)
    if isinstance(value, (set, frozenset)):
        return _sorted_elements(value)
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def _sorted_elements(elements) -> list:
    try:
        return sorted(elements)
    except TypeError:  # mixed kinds (ints and strings): grouped by kind, then by their JSON text
        return sorted(elements, key=lambda e: (type(e).__name__, json.dumps(e, default=_plain_value)))


def _interpreter_exit(namespace: dict, preset_names: int) -> None:
    """What CPython does between the end of __main__ and the end of the process, in its order: wait for
    the non-daemon threads (a program may do all its work in one it never joins), run the atexit
    handlers, flush sys.stdout and sys.stderr, put the original streams back, then clear __main__'s
    globals and collect the garbage, so that a buffered writer nobody flushed flushes as it is freed.
    Nothing failing there changes the exit status; the wall clock and the CPU limit still run (a thread
    that runs on is TLE)."""
    threading = sys.modules.get("threading")  # the zygote never imports it: only a submission that did
    if threading is not None and (threading._shutdown_locks or threading._threading_atexits):
        _safe(threading._shutdown)
    _safe(atexit._run_exitfuncs)
    _flush_stdio()
    _fresh_stdio()
    # Only the submission's globals: touching the preset typing names would copy the zygote's pages.
    names = list(itertools.islice(reversed(namespace), max(len(namespace) - preset_names, 0)))[::-1]
    for name in names:
        _safe(lambda: _flush_writers(namespace.get(name)))
    _safe(lambda: _clear_globals(namespace, names))
    _safe(gc.collect)
    _flush_stdio()


def _flush_writers(value: object) -> None:
    # A global writer, or one a global object holds, is flushed before the globals are cleared: freed
    # inside a reference cycle, a writer may be finalized after its raw file, which then refuses the flush
    # (CPython's own exit flushes them).
    held = () if isinstance(value, types.ModuleType) else list(getattr(value, "__dict__", {}).values())
    for candidate in (value, *held):
        if isinstance(candidate, io.IOBase):
            _safe(candidate.flush)


def _clear_globals(namespace: dict, names: list[str]) -> None:
    # CPython's order (_PyModule_ClearDict): names with one leading underscore first, then the rest, each
    # set to None rather than deleted; the builtins stay, so a __del__ running meanwhile can still print.
    for private in (True, False):
        for name in names:
            if (name.startswith("_") and not name.startswith("__")) == private:
                namespace[name] = None


def _flush_stdio() -> None:
    for stream in (sys.stdout, sys.__stdout__, sys.stderr):
        _safe(stream.flush)


def _safe(action: Callable[[], object]) -> None:
    try:
        action()
    except BaseException:  # noqa: BLE001 - what fails at exit (a closed stream, a broken handler) changes nothing now
        pass


# ---- warming the zygote's interpreter up ---------------------------------------------------------------

# A program of the judge's own (never a submission), with the input handling and output of a typical
# stdio solution.
_WARM_UP_CODE = """\
import sys
n = int(input())
values = list(map(int, input().split()))
rest = sys.stdin.read().split()
total = 0
for value in values:
    total += value
print(n, total, max(values), min(values), len(rest))
print(*sorted(values))
print(" ".join(map(str, values)), end="\\n")
sys.stdout.write(str(len(values)) + "\\n")
"""
_WARM_UP_INPUT = b"5\n3 1 4 1 5\n9 2 6\n"


def warm_up_interpreter(rounds: int = 16) -> None:
    """Run the Python harness on _WARM_UP_CODE `rounds` times in this process (the zygote, before it forks
    test children), on streams of its own: the interpreter's type attribute cache, lazily filled static
    state and the specialized bytecode of the harness then already hold what a child needs, so a child
    reads those pages instead of writing, and so copying, them (measured: 26 fewer page faults and 12% less
    CPU for a print(input()) test; a second program of other idioms gained nothing measurable). Everything
    the harness sets process-wide is put back, except the atexit handlers it clears (as every child does):
    the zygote runs none at its exit."""
    global _STDIO
    saved_stdio = _STDIO
    saved_sys = (sys.argv, sys.stdin, sys.stdout, sys.stderr, sys.__stdin__, sys.__stdout__, sys.__stderr__)
    saved_main = sys.modules.get("__main__")
    # A module of its own: the warm-up runs here, and the submissions' module must stay as built.
    program = PythonProgram(compile(_WARM_UP_CODE, "warm_up.py", "exec", dont_inherit=True), "stdio", None,
                            None, 0, module=_new_main_module())
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        for _ in range(rounds):
            read_end, write_end = os.pipe()
            try:
                os.write(write_end, _WARM_UP_INPUT)
                os.close(write_end)
                _STDIO = (_text_stream(read_end, "rb", "surrogateescape", "<stdin>"),
                          _text_stream(null, "wb", "surrogateescape", "<stdout>"),
                          _text_stream(null, "wb", "backslashreplace", "<stderr>"))
                if program.run_as_main() != 0:
                    raise RuntimeError("the judge's warm-up program failed")
            finally:
                os.close(read_end)
    finally:
        _STDIO = saved_stdio
        sys.argv, sys.stdin, sys.stdout, sys.stderr, sys.__stdin__, sys.__stdout__, sys.__stderr__ = saved_sys
        if saved_main is not None:
            sys.modules["__main__"] = saved_main
        os.close(null)  # last: the warm-up's streams, freed above, flush into it as they go
