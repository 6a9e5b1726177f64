"""The walls a test child is put behind before untrusted code runs.

Four layers, applied by the child in this order (see executor.enter_sandbox):
  1. rlimits: address space, CPU time, file size, open files, stack, no core dumps;
  2. an unprivileged uid/gid (65534) when the judge runs as root, and death with the zygote;
  3. a seccomp filter (denied: network sockets, fork/vfork, clone without CLONE_THREAD, clone3, ptrace,
     process_vm_*, signals to any other process, namespace and mount tricks; execve except the one call
     that starts a compiled submission);
  4. a private view of the disk, set up once by the zygote as root: every top-level folder that may hold
     problem data or user files is covered by an empty tmpfs, and only the Python installation is
     mounted back, so files holding expected outputs cannot be read even when they are world-readable.

The seccomp program is compiled once (libseccomp) and loaded in each child with one prctl; the child's
own pid is patched into the copy, because "signals to other processes" needs it.
"""
from __future__ import annotations

import ctypes
import errno
import math
import os
import resource
import signal
import struct
import sys
import traceback
from dataclasses import dataclass

NOBODY = 65534
# The user that a problem's own programs (checkers, interactors: judge/checker.py start_trusted) run as when
# the judge is root: neither root nor the submissions' nobody, so that a submission cannot reach them through
# /proc/PID (their working folder with the answer, their memory). 65533 is in Debian's reserved range
# 65000-65533, which no package or person is given.
TRUSTED_UID = 65533
# Stands for the child's pid in the compiled filter; patched per child. Odd enough never to be a real
# constant of the filter (the build checks it occurs).
_PID_PLACEHOLDER = 0x3A5C9E17
_CLONE_THREAD = 0x00010000
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_PDEATHSIG = 1
_MAX_STACK_BYTES = 256 << 20

_DENIED = (
    "fork", "vfork", "ptrace", "process_vm_readv", "process_vm_writev", "socket",
    "pidfd_open", "pidfd_getfd", "pidfd_send_signal", "unshare", "setns", "mount", "umount2",
    "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsmount", "keyctl", "add_key",
    "request_key", "bpf", "perf_event_open", "userfaultfd", "kcmp", "execveat", "io_uring_setup",
    "sched_setaffinity",  # a child stays on its worker's CPU (judge/affinity.py)
)
# Signals may only go to the child itself (threads included: Python's raise_signal uses tgkill).
_SIGNAL_CALLS = ("kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo")

# The C library through the interpreter's own symbols: ctypes.util.find_library would import subprocess,
# and with it threading, into the zygote (see judge/zygote.py).
_libc = ctypes.CDLL(None, use_errno=True)
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.unshare.argtypes = [ctypes.c_int]


@dataclass(frozen=True)
class Limits:
    """Resource limits of one test run. Wall time allows for a machine shared with other work; CPU time
    is what decides TLE for a program that computes. The wall-clock deadline also moves by the time the
    program waited, runnable, for a CPU that other work held (up to the wall limit again; not for
    interactive tests): under a heavy job beside the judge, a 0.8 s sleep was measured taking 5.8 s."""

    time_limit_s: float
    memory_limit_mb: int
    output_limit_bytes: int = 64 << 20
    file_size_bytes: int = 64 << 20
    open_files: int = 64

    @property
    def wall_limit_s(self) -> float:
        return 2.0 * self.time_limit_s + 1.0


def apply_rlimits(limits: Limits, address_space_bytes: int) -> None:
    for which, soft, hard in rlimit_values(limits, address_space_bytes):
        resource.setrlimit(which, (soft, hard))


def rlimit_values(limits: Limits, address_space_bytes: int) -> tuple[tuple[int, int, int], ...]:
    """(resource, soft, hard) in the order they are set; computed once per submission for the C path
    (judge/_fastchild.c), which sets them itself."""
    # Whole seconds only: a program under the limit here but over time_limit_s is still TLE (measured).
    cpu = max(1, math.ceil(limits.time_limit_s))
    # Deep recursion needs a big main stack, but glibc also sizes every thread's stack by this limit, and
    # a thread stack of the whole memory limit could never be mapped under RLIMIT_AS.
    stack = min(limits.memory_limit_mb << 18, _MAX_STACK_BYTES, _hard_limit(resource.RLIMIT_STACK))
    return (
        (resource.RLIMIT_CPU, cpu, cpu + 1),
        (resource.RLIMIT_AS, address_space_bytes, address_space_bytes),
        (resource.RLIMIT_STACK, stack, stack),
        (resource.RLIMIT_FSIZE, limits.file_size_bytes, limits.file_size_bytes),
        (resource.RLIMIT_NOFILE, limits.open_files, limits.open_files),
        (resource.RLIMIT_CORE, 0, 0),
    )


def sandbox_uid() -> int:
    """The user a test child becomes: nobody when the judge runs as root, else -1 (keeps its own)."""
    return NOBODY if os.geteuid() == 0 else -1


def _hard_limit(which: int) -> int:
    hard = resource.getrlimit(which)[1]
    return (1 << 62) if hard == resource.RLIM_INFINITY else hard


def drop_privileges() -> None:
    """Become nobody when running as root; a non-root judge keeps its user (documented limitation)."""
    if os.geteuid() != 0:
        return
    os.setgroups([])
    os.setresgid(NOBODY, NOBODY, NOBODY)
    os.setresuid(NOBODY, NOBODY, NOBODY)


def die_with_parent(parent_pid: int) -> None:
    """Be killed if the zygote dies (a crash there must not leave a sleeping submission behind). Set
    after the uid change, which clears it."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)  # the zygote died before the setting took hold


def give_to_sandbox_user(path: str) -> None:
    if os.geteuid() == 0:
        os.chown(path, NOBODY, NOBODY)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class SeccompProgram:
    """A compiled BPF filter with the child's pid left open. `exec_path` is a buffer whose address is the
    only pointer execve accepts as its path: the parent's exec of the compiled binary passes; a later
    execve from the binary would need that exact address holding a path, and exec replaces the memory.

    Built from a template compiled once per process (filter_templates), with the exec address written in;
    a child only writes its pid into its copy and makes two prctl calls."""

    def __init__(self, exec_path: ctypes.Array | None = None) -> None:
        self.exec_path = exec_path
        template = filter_templates()["native" if exec_path is not None else "python"]
        self._program = bytearray(template.program)
        self._pid_offsets = template.pid_offsets
        if exec_path is not None:
            _patch(self._program, template.exec_offsets, ctypes.addressof(exec_path))
        instructions = (ctypes.c_ubyte * len(self._program)).from_buffer(self._program)
        self._fprog = _SockFprog(len(self._program) // 8, ctypes.addressof(instructions))
        self._instructions = instructions  # keeps the buffer the fprog points at alive

    def template(self) -> tuple[bytes, tuple[int, ...]]:
        """The program (exec address written in) and where the pid goes, for the C path, which writes
        the pid into its own copy."""
        return bytes(self._program), self._pid_offsets

    def load(self) -> None:
        """Install in the calling process (a child, after fork). Irreversible."""
        pid = os.getpid()
        for offset in self._pid_offsets:
            struct.pack_into("=I", self._program, offset, pid)
        if _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if _libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(self._fprog), 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")


@dataclass(frozen=True)
class FilterTemplate:
    program: bytes
    pid_offsets: tuple[int, ...]  # where the child writes its pid (32-bit words)
    exec_offsets: tuple[tuple[int, int], ...]  # (high word, low word) offsets of the exec address; native only


_templates: dict[str, FilterTemplate] = {}


def filter_templates() -> dict[str, FilterTemplate]:
    """The Python and the native filter, compiled on first use. The zygote asks before it hides host
    files. libseccomp's Python binding imports ctypes.util, and with it subprocess and threading, which
    must stay out of the zygote (threading's at-fork hook would run in every test child): the filters are
    compiled in a short-lived child and come back through a pipe."""
    if not _templates:
        python, native, check, check_address = _in_child(lambda: _compile_templates())
        templates = {"python": _template(python, ()), "native": _template(native, _EXEC_PLACEHOLDER)}
        # The address is written into the native template's comparison words: prove on a real-looking
        # address that this gives exactly what libseccomp compiles for it.
        patched = bytearray(native)
        _patch(patched, templates["native"].exec_offsets, check_address)
        if bytes(patched) != check:
            raise RuntimeError("sandbox: libseccomp's execve check has a layout the judge cannot patch")
        _templates.update(templates)
    return _templates


_EXEC_PLACEHOLDER = 0x5B7D1C93_6B2D4F81
_CHECK_ADDRESS = 0x7F3A_1C2B3D4E


def _compile_templates() -> tuple[bytes, bytes, bytes, int]:
    return (_build_filter(None), _build_filter(_EXEC_PLACEHOLDER), _build_filter(_CHECK_ADDRESS), _CHECK_ADDRESS)


def _template(program: bytes, exec_placeholder: int | tuple) -> FilterTemplate:
    words = [struct.unpack_from("=I", program, i + 4)[0] for i in range(0, len(program), 8)]
    pid_offsets = tuple(8 * i + 4 for i, k in enumerate(words) if k == _PID_PLACEHOLDER)
    if not pid_offsets:
        raise RuntimeError("sandbox: compiled seccomp filter lost its pid checks; cannot patch the pid")
    exec_offsets: tuple = ()
    if exec_placeholder:
        high = [8 * i + 4 for i, k in enumerate(words) if k == exec_placeholder >> 32]
        low = [8 * i + 4 for i, k in enumerate(words) if k == exec_placeholder & 0xFFFFFFFF]
        if len(high) != len(low) or not high:
            raise RuntimeError("sandbox: compiled seccomp filter lost its execve check")
        exec_offsets = tuple(zip(high, low))
    return FilterTemplate(program, pid_offsets, exec_offsets)


def _patch(program: bytearray, exec_offsets, address: int) -> None:
    for high, low in exec_offsets:
        struct.pack_into("=I", program, high, address >> 32)
        struct.pack_into("=I", program, low, address & 0xFFFFFFFF)


def _in_child(work):
    """`work()`'s result (picklable), computed in a forked child that exits afterwards."""
    import pickle

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.close(read_end)
            with os.fdopen(write_end, "wb") as out:
                pickle.dump(work(), out)
            status = 0
        except BaseException:  # noqa: BLE001 - reported on stderr; the parent raises
            traceback.print_exc()
            sys.stderr.flush()
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    if status != 0 or not data:
        raise RuntimeError(f"sandbox: compiling the seccomp filters failed (exit status {status}; see stderr)")
    return pickle.loads(data)


def _build_filter(exec_address: int | None) -> bytes:
    import tempfile

    import pyseccomp

    def add(action: int, name: str, *args) -> None:
        try:
            f.add_rule(action, name, *args)
        except (OSError, ValueError, RuntimeError):
            # A syscall this architecture does not have (fork/vfork on aarch64): nothing to deny.
            pass

    deny = pyseccomp.ERRNO(errno.EPERM)
    f = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    try:
        # The syscall numbers as a binary tree, not a chain: the same decisions in fewer comparisons. When a
        # child loads the filter the kernel runs it for every syscall number (its always-allowed cache), so
        # a chain of ~30 comparisons cost each test child ~70 us there, the tree ~35 us.
        f.set_attr(pyseccomp.Attr.CTL_OPTIMIZE, 2)
    except (OSError, ValueError, RuntimeError, AttributeError):
        pass  # libseccomp before 2.5: the chain
    for name in _DENIED:
        add(deny, name)
    add(pyseccomp.ERRNO(errno.ENOSYS), "clone3")  # makes glibc fall back to clone, checked below
    add(deny, "prctl", pyseccomp.Arg(0, pyseccomp.EQ, _PR_SET_PDEATHSIG))  # keep die_with_parent
    add(deny, "clone", pyseccomp.Arg(0, pyseccomp.MASKED_EQ, _CLONE_THREAD, 0))
    for name in _SIGNAL_CALLS:
        add(deny, name, pyseccomp.Arg(0, pyseccomp.NE, _PID_PLACEHOLDER))
    if exec_address is None:
        add(deny, "execve")
    else:
        add(deny, "execve", pyseccomp.Arg(0, pyseccomp.NE, exec_address))
    with tempfile.TemporaryFile() as out:
        f.export_bpf(out)
        out.seek(0)
        return out.read()


def become_subreaper() -> None:
    """Orphans of a child are re-parented to us, not to init, so the zygote can reap them."""
    _libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


# ---- the private view of the disk ------------------------------------------------------------------

_CLONE_NEWNS = 0x00020000
_MS_NOSUID, _MS_NODEV, _MS_REC, _MS_PRIVATE = 0x2, 0x4, 0x4000, 1 << 18
_OPEN_TREE_CLONE, _AT_RECURSIVE, _AT_FDCWD = 1, 0x8000, -100
_MOVE_MOUNT_F_EMPTY_PATH = 0x4
_SYS_OPEN_TREE, _SYS_MOVE_MOUNT = 428, 429  # same number on every architecture (new-style syscalls)
# Top-level folders the system needs; everything else at / is covered.
_SYSTEM_ROOTS = {"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc", "dev", "proc", "sys",
                 "boot", "var"}
_EXTRA_COVERED = ("/var/tmp", "/dev/shm")


def hide_host_files(keep: list[str], also_cover: list[str]) -> list[str]:
    """Enter a private mount namespace where problem data and user files are out of sight; `keep` folders
    (the Python installation) stay visible at their paths; `also_cover` are covered after that (the judge
    package, which holds sample problems). Needs root; returns the folders covered."""
    if _libc.unshare(_CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS) failed")
    _mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None)
    covered = [
        f"/{name}" for name in sorted(os.listdir("/"))
        if name not in _SYSTEM_ROOTS and os.path.isdir(f"/{name}") and not os.path.islink(f"/{name}")
    ] + [p for p in _EXTRA_COVERED if os.path.isdir(p) and not os.path.islink(p)]
    kept = []
    for path in keep:
        path = os.path.realpath(path)
        if any(path == c or path.startswith(c + "/") for c in covered) and os.path.isdir(path):
            kept.append((path, _clone_tree(path)))
    for path in covered:
        _mount(b"tmpfs", path.encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV, b"mode=0755,size=1g")
    for path, tree in kept:
        os.makedirs(path, mode=0o755, exist_ok=True)
        _move_mount(tree, path)
        os.close(tree)
    for path in (p for p in also_cover if os.path.isdir(p)):
        _mount(b"tmpfs", path.encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV, b"mode=0755,size=1m")
    return covered + list(also_cover)


def _mount(source: bytes, target: bytes, fstype: bytes | None, flags: int, data: bytes | None) -> None:
    if _libc.mount(source, target, fstype, flags, data) != 0:
        raise OSError(ctypes.get_errno(), f"mount {target.decode()} failed")


def _clone_tree(path: str) -> int:
    fd = _libc.syscall(ctypes.c_long(_SYS_OPEN_TREE), ctypes.c_long(_AT_FDCWD), path.encode(),
                       ctypes.c_long(_OPEN_TREE_CLONE | _AT_RECURSIVE))
    if fd < 0:
        raise OSError(ctypes.get_errno(), f"open_tree {path} failed")
    return fd


def _move_mount(tree: int, target: str) -> None:
    rc = _libc.syscall(ctypes.c_long(_SYS_MOVE_MOUNT), ctypes.c_long(tree), b"", ctypes.c_long(_AT_FDCWD),
                       target.encode(), ctypes.c_long(_MOVE_MOUNT_F_EMPTY_PATH))
    if rc != 0:
        raise OSError(ctypes.get_errno(), f"move_mount onto {target} failed")


_CLONE_NEWNET = 0x40000000


def enter_trusted_sandbox(argv: list[str]) -> None:
    """Exec a problem's own program (judge/checker.py start_trusted) as `uid` with no groups, in a network
    namespace of its own and the private view of the disk (hide_host_files): folders outside the system's
    are covered (so /tmp, /var/tmp, /dev/shm are not writable either) except the `keep` ones (its working
    folder, its program, the Python installation), which stay at their paths. For a Python problem program
    when the user cannot reach the interpreter on the host's disk (it lives under a folder closed to other
    users, such as /root/.pyenv). Run as root, as `python -S -c ... UID KEEP... -- COMMAND...`; never
    returns."""
    split = argv.index("--")
    uid, keep, command = int(argv[0]), argv[1:split], argv[split + 1:]
    cwd = os.getcwd()
    if _libc.unshare(_CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET) failed")
    hide_host_files(keep, also_cover=[])
    os.chdir(cwd)  # the working folder again, through the view kept of it
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    os.execv(command[0], command)
