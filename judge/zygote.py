"""A pre-warmed fork server: one long-lived Python process per worker that has already imported the
standard library bits solutions use and numpy, and forks a fresh child per test (judge/executor.py).

`Zygote` is the worker-side handle (it speaks to the process over two pipes); `serve()` is the process.
The zygote never sees expected outputs: it receives a submission, then test inputs one at a time, and
returns what each child did. When run as root it lives in its own mount namespace where problem files
and user files are hidden (judge/sandbox.py).

Protocol: frames of a 4-byte big-endian length and a body, both ways (the zygote is our own code). A
body is a pickle, except for a test's request and reply, which are plain bytes so that the zygote can run
tests without Python code (judge/_fastchild.c's serve):
  ("load", language, kind, fn_name, code, limits) -> ("loaded", "ok" | "CE" | "SE", message)
  b"T" + b"1" | b"0" (more tests follow) + input   -> b"T" + _REPLY fields + stdout + stderr + payload
  ("unload",)                                     -> ("unloaded",)
  ("run_interactive",)                            -> ("ran", Outcome fields)   (judge/interactive.py)
An interactive test's two pipe ends (the child's stdin and stdout, connected to the interactor in the
judging process) travel just before its message over a Unix socket pair made at start (fd passing); its
child is forked on demand.
The zygote keeps one child ahead: forked after a load is answered, and during each test that says more
tests follow, so that the next child sets itself up (fork, limits, filter) while this test runs.
With the C extension built (judge/_fastchild.c) the children are FastChild and a loaded submission's
tests are run by _fastchild.serve, which returns here for any other request; without it (or with
MC_JUDGE_FASTCHILD=0) Child and the Python loop do the same.
"""
from __future__ import annotations

import gc
import importlib
import os
import pickle
import select
import shutil
import socket
import struct
import sys
import sysconfig
import time
import warnings
from typing import Any, Sequence

import judge
from judge import compile as cpp
from judge import affinity, executor, sandbox
from judge.executor import (_STDERR_KEEP, Child, FastChild, NativeProgram, Outcome, PythonProgram, _fastchild,
                            enter_sandbox, fast_path_available, python_child)
from judge.sandbox import SeccompProgram, give_to_sandbox_user

_HEADER = struct.Struct(">I")
_TEST = b"T"  # the first byte of a test's request and reply bodies
# After _TEST: ready, timed out, output exceeded, exit code, signal (-1: none), wall s, CPU s, then the
# lengths of stdout, stderr and the payload that follow (judge/_fastchild.c's ReplyHeader).
_REPLY = struct.Struct(">BBBiiddQQQ")
_START_TIMEOUT_S = 120.0
_REPLY_MARGIN_S = 30.0
_COMPILE_TIMEOUT_S = 120.0
# Numerical libraries must not start thread pools in the zygote: a fork copies only the calling thread.
_SINGLE_THREADED = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


class ZygoteError(RuntimeError):
    """The zygote died, hung or answered nonsense; the worker replaces it and reports SE."""


class Zygote:
    """Handle on one zygote process. Not thread-safe: one worker thread drives one zygote."""

    def __init__(self, flavor: str = "lean", cpu: int | None = None) -> None:
        """cpu: the one CPU the zygote and its children run on (judge/affinity.py); None: any."""
        if flavor not in FLAVORS:
            raise ValueError(f"unknown zygote flavor {flavor!r}; one of {sorted(FLAVORS)}")
        self.flavor = flavor
        package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(os.environ, **_SINGLE_THREADED)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        # Every symbol bound at start: with lazy binding each test child would bind (write) the ones the
        # zygote never called itself, again and again. serve() takes it out of the environment it passes on.
        env["LD_BIND_NOW"] = "1"
        self._fd_socket, zygote_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        start = f"from judge.zygote import serve; serve({flavor!r}, {zygote_end.fileno()}, {cpu!r})"
        with zygote_end:
            self._proc = _subprocess().Popen(
                [sys.executable, "-c", start],
                stdin=_subprocess().PIPE,
                stdout=_subprocess().PIPE,
                env=env,
                start_new_session=True,
                pass_fds=(zygote_end.fileno(),),
            )
        self._to = self._proc.stdin.fileno()
        self._from = self._proc.stdout.fileno()
        reply = self._receive(_START_TIMEOUT_S)
        if reply[0] != "ready":
            self.close()
            raise ZygoteError(f"zygote said {reply[0]!r} instead of ready")
        self.info: dict[str, Any] = reply[1]

    def load(self, language: str, kind: str, fn_name: str | None, code: str, limits) -> tuple[str, str]:
        reply = self._call(("load", language, kind, fn_name, code, limits), _COMPILE_TIMEOUT_S)
        return reply[1], reply[2]

    def run(self, stdin_data: bytes, wall_limit_s: float, more_tests_follow: bool = False):
        try:
            _write_body(self._to, _TEST + (b"1" if more_tests_follow else b"0"), stdin_data)
        except OSError as e:
            raise ZygoteError(f"zygote {self._proc.pid} is gone ({e})") from None
        body = self._receive_body(wall_limit_s + _REPLY_MARGIN_S)
        if body[:1] != _TEST:
            raise ZygoteError(f"zygote {self._proc.pid} answered a test with {body[:20]!r}")
        return decode_outcome(body)

    def run_interactive(self, stdin_fd: int, stdout_fd: int, wall_limit_s: float):
        """Run one test whose child reads `stdin_fd` and writes `stdout_fd`; both are sent to the zygote and
        closed here."""
        try:
            socket.send_fds(self._fd_socket, [b"F"], [stdin_fd, stdout_fd])
        except OSError as e:
            raise ZygoteError(f"zygote {self._proc.pid} is gone ({e})") from None
        finally:
            os.close(stdin_fd)
            os.close(stdout_fd)
        return Outcome(*self._call(("run_interactive",), wall_limit_s + _REPLY_MARGIN_S)[1])

    def unload(self) -> None:
        self._call(("unload",), _REPLY_MARGIN_S)

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    def close(self) -> None:
        try:
            self._proc.stdin.close()
            self._proc.wait(timeout=10)
        except (OSError, _subprocess().TimeoutExpired):
            self._proc.kill()
            self._proc.wait()
        self._proc.stdout.close()
        self._fd_socket.close()

    def _call(self, message: tuple, timeout: float):
        try:
            _write_frame(self._to, message)
        except OSError as e:
            raise ZygoteError(f"zygote {self._proc.pid} is gone ({e})") from None
        return self._receive(timeout)

    def _receive(self, timeout: float):
        return pickle.loads(self._receive_body(timeout))

    def _receive_body(self, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        header = self._read_exactly(_HEADER.size, deadline)
        return self._read_exactly(_HEADER.unpack(header)[0], deadline)

    def _read_exactly(self, size: int, deadline: float) -> bytes:
        chunks, missing = [], size
        while missing:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self._from], [], [], remaining)[0]:
                self._proc.kill()
                raise ZygoteError(f"zygote {self._proc.pid} did not answer in time; killed")
            chunk = os.read(self._from, min(missing, 1 << 20))
            if not chunk:
                raise ZygoteError(f"zygote {self._proc.pid} exited (code {self._proc.poll()})")
            chunks.append(chunk)
            missing -= len(chunk)
        return b"".join(chunks)


def _subprocess():
    # Imported where the handle runs (the judging process), never in the zygote: subprocess imports
    # threading, whose at-fork hook would then run in every child (about a fifth of a millisecond each).
    import subprocess
    return subprocess


def _write_frame(fd: int, message: Any) -> None:
    _write_body(fd, pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))


def _write_body(fd: int, *parts: bytes) -> None:
    """One frame whose body is `parts` joined (written as they are: a test's input is not copied)."""
    buffers = [memoryview(_HEADER.pack(sum(map(len, parts)))), *map(memoryview, parts)]
    while buffers:
        written = os.writev(fd, buffers)
        while buffers and written >= len(buffers[0]):
            written -= len(buffers.pop(0))
        if buffers:
            buffers[0] = buffers[0][written:]


def _read_body(fd: int) -> bytes | None:
    header = _read_exactly_blocking(fd, _HEADER.size)
    if header is None:
        return None
    return _read_exactly_blocking(fd, _HEADER.unpack(header)[0])


def encode_outcome(outcome: Outcome) -> bytes:
    """A test's reply body, as judge/_fastchild.c writes it."""
    none = lambda value: -1 if value is None else value  # noqa: E731
    return b"".join((_TEST, _REPLY.pack(outcome.ready, outcome.timed_out, outcome.output_exceeded,
                                        none(outcome.exit_code), none(outcome.signal), outcome.wall_s,
                                        outcome.cpu_s, len(outcome.stdout), len(outcome.stderr),
                                        len(outcome.payload)),
                     outcome.stdout, outcome.stderr, outcome.payload))


def decode_outcome(body: bytes) -> Outcome:
    ready, timed_out, exceeded, exit_code, signal, wall, cpu, out_len, err_len, payload_len = \
        _REPLY.unpack_from(body, len(_TEST))
    start = len(_TEST) + _REPLY.size
    if len(body) != start + out_len + err_len + payload_len:
        raise ZygoteError(f"a test's reply of {len(body)} bytes does not match its lengths")
    stdout = body[start:start + out_len]
    stderr = body[start + out_len:start + out_len + err_len]
    return Outcome(bool(ready), bool(timed_out), bool(exceeded), None if exit_code < 0 else exit_code,
                   None if signal < 0 else signal, stdout, stderr, body[start + out_len + err_len:], wall, cpu)


def _read_exactly_blocking(fd: int, size: int) -> bytes | None:
    chunks, missing = [], size
    while missing:
        chunk = os.read(fd, missing)
        if not chunk:
            return None
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


# ---- the zygote process ----------------------------------------------------------------------------

# Imported before the first fork so that no child pays for them. Forking a process costs in proportion
# to its memory, and numpy is the largest part: only submissions that mention it get the zygote that
# preloaded it.
_STDLIB = (
    "array", "bisect", "cmath", "collections", "copy", "dataclasses", "datetime", "decimal", "enum",
    "fractions", "functools", "heapq", "itertools", "json", "math", "numbers", "operator", "re", "string",
    "struct", "traceback", "typing",
)
# Never preloaded: modules that register an at-fork hook, which would then run in every child whether the
# submission uses them or not: threading (and queue, which imports it) about 0.2 ms a test, random (and
# statistics, tempfile, which import it: it reseeds) about 0.08 ms. A submission that imports one pays
# for that import itself.
FLAVORS = {"lean": _STDLIB, "numpy": (*_STDLIB, "numpy")}


def flavor_for(language: str, code: str) -> str:
    return "numpy" if language == "python" and "numpy" in code else "lean"


def _compile_quietly(code: str):
    # The compiler's warnings about a submission (`x is 1`, `1if`, invalid escapes) would go to this
    # process's stderr, which is the judging program's terminal; they say nothing about the verdict.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        return compile(code, "solution.py", "exec", dont_inherit=True)


class _Server:
    """The zygote's state: the loaded submission and the child kept ahead. Each handler returns its reply
    and, optionally, work to do once the reply is sent (forking the first child after a load)."""

    def __init__(self, scratch_root: str, hidden: list[str], fd_socket: socket.socket) -> None:
        self.scratch_root = scratch_root
        self.hidden = hidden
        self.fd_socket = fd_socket
        self.python_filter = SeccompProgram()
        self.baseline_address_space = _address_space_in_use()
        self.program = None
        self.limits = None
        # The C path for each child (judge/_fastchild.c) when built and this process is single-threaded;
        # else the Python path. `fast_spec`: the loaded submission's sandbox in the C path's terms.
        self.fast = fast_path_available()
        self.fast_spec: tuple | None = None
        self.fast_root = os.fsencode(scratch_root)
        self.spare: Child | FastChild | None = None
        self.submission_dir: str | None = None
        self.loads = 0
        self.pid = os.getpid()

    def load(self, language, kind, fn_name, code, limits):
        self.unload()
        self.limits = limits
        if language == "python":
            try:
                code_object = _compile_quietly(code)
            except (SyntaxError, ValueError) as e:
                return ("loaded", "CE", f"{type(e).__name__}: {e}"), None
            self.program = PythonProgram(code_object, kind, fn_name, self.python_filter,
                                         self.baseline_address_space)
            self.program.make_main()  # here once, rather than written by every child
            self._describe_for_fast_path()
            return ("loaded", "ok", ""), self._fork_spare
        self.loads += 1
        self.submission_dir = os.path.join(self.scratch_root, f"s{self.loads}")
        os.mkdir(self.submission_dir, 0o700)
        give_to_sandbox_user(self.submission_dir)
        result = cpp.compile_cpp(code, self.submission_dir, language)
        if result.binary is None:
            return ("loaded", "SE" if result.judge_failed else "CE", result.message), None
        self.program = NativeProgram(result.binary)
        self._describe_for_fast_path()
        return ("loaded", "ok", result.message), self._fork_spare

    def run(self, body: bytes) -> bytes:
        """A test's request body (see the protocol above) -> its reply body."""
        if self.program is None:
            raise RuntimeError("run before a successful load")
        more_tests_follow, stdin_data = body[1:2] == b"1", body[2:]
        child = self.spare or self._fork_child()
        child.start(stdin_data)
        # Fork the next test's child while this one runs: its set-up then overlaps this test.
        self.spare = self._fork_child() if more_tests_follow else None
        return encode_outcome(child.finish(self.limits.wall_limit_s, self.limits.output_limit_bytes))

    def next_request(self, requests: int, replies: int) -> bytes | None:
        """The body of the next request that is not a test (None at the end of requests): with the C path
        and a loaded submission, tests are run in C meanwhile."""
        if self.fast_spec is None:
            return _read_body(requests)
        spare = self.spare.handle if self.spare is not None else None
        self.spare = None  # serve owns it now
        _empty_free_lists()
        served = _fastchild.serve(requests, replies, spare, self.limits.wall_limit_s,
                                  self.limits.output_limit_bytes, _STDERR_KEEP, self.fast_root, self.pid,
                                  *self.fast_spec)
        if served is None:
            python_child(self.program)  # a test child, in its sandbox with GO received; never returns
        body, spare = served
        self.spare = FastChild(spare, self.fast_root) if spare is not None else None
        return body

    def run_interactive(self):
        if self.program is None:
            raise RuntimeError("run_interactive before a successful load")
        _, fds, _, _ = socket.recv_fds(self.fd_socket, 1, 2)
        if len(fds) != 2:
            for fd in fds:
                os.close(fd)
            raise RuntimeError(f"run_interactive: expected the child's stdin and stdout, got {len(fds)} fds")
        self._discard_spare()  # forked with its own pipes, which an interactive test does not use
        child = self._fork_child(stdio=fds)
        child.start(b"")
        # The deadline stays put (max_cpu_wait_s=0): the interactor's own deadline (judge/interactive.py)
        # does not move with it.
        outcome = child.finish(self.limits.wall_limit_s, self.limits.output_limit_bytes, max_cpu_wait_s=0.0)
        return ("ran", outcome.to_wire()), None

    def unload(self):
        self._discard_spare()
        self.program = None
        self.fast_spec = None
        if self.submission_dir is not None:
            shutil.rmtree(self.submission_dir, ignore_errors=True)
            self.submission_dir = None
        return ("unloaded",), None

    def _describe_for_fast_path(self) -> None:
        if self.fast:
            self.fast_spec = self.program.fast_spec(self.limits)

    def _fork_child(self, stdio: Sequence[int] | None = None) -> Child | FastChild:
        program, limits = self.program, self.limits
        if self.fast_spec is not None:
            return FastChild.spawn(program, self.fast_spec, self.pid, self.fast_root, stdio)
        return Child(lambda zygote_pid: enter_sandbox(program, limits, zygote_pid), self.scratch_root, stdio)

    def _fork_spare(self) -> None:
        _empty_free_lists()
        self.spare = self._fork_child()

    def _discard_spare(self) -> None:
        if self.spare is not None:
            self.spare.discard()
            self.spare = None


def _empty_free_lists() -> None:
    """A child's collection at its exit (executor._interpreter_exit, as CPython's own) is a full one, which
    also empties the interpreter's free lists (tuples, lists, dicts, frames and more kept for reuse): were
    they full of the zygote's objects, every child would free them again, writing (copying) their pages
    (7 of a print(input()) test's page faults). Emptied here before children are forked, once a submission."""
    gc.collect()


def _address_space_in_use() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def _private_scratch() -> tuple[str, list[str]]:
    """Hide host files when root (mount namespace); return the scratch root and what was hidden."""
    hidden: list[str] = []
    if os.geteuid() == 0:
        keep = sorted({sys.base_prefix, sys.prefix, *(sysconfig.get_paths()[k] for k in
                                                      ("stdlib", "platstdlib", "purelib", "platlib"))})
        package = os.path.dirname(os.path.abspath(judge.__file__))
        try:
            hidden = sandbox.hide_host_files(keep, also_cover=[package])
        except OSError as e:
            print(f"mc-judge zygote: cannot hide host files ({e}); children can read world-readable "
                  f"files", file=sys.stderr)
    if hidden and os.path.isdir("/tmp"):
        root = "/tmp/mc-judge"
        os.mkdir(root, 0o711)
    else:
        # As tempfile.mkdtemp does (a fresh name, created exclusively); tempfile itself would import random.
        root = os.path.join(os.environ.get("TMPDIR") or "/tmp", f"mc-judge-{os.getpid()}-{os.urandom(6).hex()}")
        os.mkdir(root, 0o711)
        os.chmod(root, 0o711)  # whatever the umask
    return root, hidden


def serve(flavor: str, fd_socket: int, cpu: int | None = None) -> None:
    affinity.pin_this_process(cpu)  # first: what it sets up, it sets up on that CPU's caches
    os.environ.pop("LD_BIND_NOW", None)  # for this process only (Zygote.__init__), not for compilers
    for name in FLAVORS[flavor]:
        importlib.import_module(name)
    requests, replies = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(2, 1)
    os.close(null)
    sandbox.become_subreaper()
    # No cap on int <-> str conversion in the children (CPython's default refuses more than 4300 digits): a
    # correct answer that is a huge number must not be lost, as LiveCodeBench's grader also lifts it (to
    # 50000 digits); the CPU limit still bounds the quadratic conversion.
    sys.set_int_max_str_digits(0)
    sandbox.filter_templates()  # compiled while libseccomp's Python binding is still in sight
    scratch_root, hidden = _private_scratch()
    server = _Server(scratch_root, hidden, socket.socket(fileno=fd_socket))
    handlers = {"load": server.load, "unload": server.unload, "run_interactive": server.run_interactive}
    executor.warm_up_interpreter()
    executor.install_stdio()
    gc.freeze()  # children then leave the zygote's objects alone: fewer copy-on-write page faults
    sandbox._libc.malloc_trim(0)  # free memory handed back: ~1 MB fewer pages for every fork to copy
    _write_frame(replies, ("ready", {"pid": os.getpid(), "hidden": hidden, "scratch": scratch_root,
                                     "fast_path": server.fast}))
    try:
        while (body := server.next_request(requests, replies)) is not None:
            if body[:1] == _TEST:
                _write_body(replies, server.run(body))
                continue
            message = pickle.loads(body)
            reply, after_reply = handlers[message[0]](*message[1:])
            executor.flush_stdio()  # what the zygote printed (a compiler warning) goes out now, not in a child
            _write_frame(replies, reply)
            if after_reply is not None:
                after_reply()
    finally:
        server.unload()
        shutil.rmtree(scratch_root, ignore_errors=True)
