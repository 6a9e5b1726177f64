"""Compile a C++17 submission once, inside the zygote, before its tests run.

The compiler reads untrusted source (`#include "/etc/shadow"`, `#include "/dev/random"`, template bombs),
so it runs like a test child: its own process group, rlimits, the sandbox user, a wall-clock limit. It
is not under the seccomp filter (g++ forks cc1plus, as and ld).
"""
from __future__ import annotations

import os
import resource
import shutil
from dataclasses import dataclass
from typing import NoReturn

from judge import sandbox
from judge.executor import run_in_child

COMPILE_WALL_S = 60.0
COMPILE_CPU_S = 40
COMPILE_MEMORY_BYTES = 4 << 30
COMPILE_OUTPUT_BYTES = 1 << 20
FLAGS = ("-std=c++17", "-O2", "-pipe", "-o", "main", "main.cpp")


@dataclass(frozen=True)
class CompileResult:
    binary: str | None  # path of the executable when compilation succeeded
    message: str  # compiler diagnostics (CE) or why the judge could not compile (SE)
    judge_failed: bool = False


def compile_cpp(source: str, scratch: str) -> CompileResult:
    """Compile `source` in `scratch` (a folder the sandbox user owns)."""
    compiler = shutil.which("g++")
    if compiler is None:
        return CompileResult(None, "g++ not found on PATH; install g++ to judge C++", judge_failed=True)
    source_path = os.path.join(scratch, "main.cpp")
    with open(source_path, "w") as f:
        f.write(source)
    sandbox.give_to_sandbox_user(source_path)

    def exec_compiler(zygote_pid: int) -> NoReturn:
        os.chdir(scratch)
        resource.setrlimit(resource.RLIMIT_CPU, (COMPILE_CPU_S, COMPILE_CPU_S + 1))
        resource.setrlimit(resource.RLIMIT_AS, (COMPILE_MEMORY_BYTES, COMPILE_MEMORY_BYTES))
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 << 20, 256 << 20))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        sandbox.drop_privileges()
        sandbox.die_with_parent(zygote_pid)
        env = {"PATH": "/usr/bin:/bin", "TMPDIR": scratch, "LANG": "C"}
        os.execve(compiler, [compiler, *FLAGS], env)

    outcome = run_in_child(exec_compiler, b"", COMPILE_WALL_S, COMPILE_OUTPUT_BYTES, workdir_root=None)
    diagnostics = outcome.stderr.decode("utf-8", errors="replace") + outcome.stdout.decode(
        "utf-8", errors="replace"
    )
    binary = os.path.join(scratch, "main")
    if outcome.timed_out:
        return CompileResult(None, f"compilation exceeded {COMPILE_WALL_S:.0f} s")
    if outcome.exit_code == 0 and os.path.exists(binary):
        return CompileResult(binary, diagnostics)
    return CompileResult(None, diagnostics or f"g++ failed (exit {outcome.exit_code}, signal {outcome.signal})")
