"""Compile a C++ submission once, inside the zygote, before its tests run.

The compiler reads untrusted source (`#include "/etc/shadow"`, `#include "/dev/random"`, template bombs),
so it runs like a test child: its own process group, rlimits, the sandbox user, a wall-clock limit. It
is not under the seccomp filter (g++ forks cc1plus, as and ld).

The C++ standard is C++20 with GNU extensions by default (accepted solutions in ICPC archives use
std::set::contains, std::ssize, std::ranges), the newest of DEFAULT_STANDARDS the installed g++ accepts;
a problem, a pool or a submission's language name ("c++17") can ask for another of problem.CPP_STANDARDS.
"""
from __future__ import annotations

import functools
import os
import resource
import shutil
import sys
from dataclasses import dataclass
from typing import NoReturn

from judge import sandbox
from judge.executor import run_in_child
from judge.problem import check_cpp_standard

COMPILE_WALL_S = 60.0
COMPILE_CPU_S = 40
COMPILE_MEMORY_BYTES = 4 << 30
COMPILE_OUTPUT_BYTES = 1 << 20
DEFAULT_STANDARDS = ("gnu++20", "c++20", "c++17")  # preferred first
_PROBE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class CompileResult:
    binary: str | None  # path of the executable when compilation succeeded
    message: str  # compiler diagnostics (CE) or why the judge could not compile (SE)
    judge_failed: bool = False


@functools.cache
def default_standard() -> str:
    """The newest of DEFAULT_STANDARDS that the installed g++ accepts (asked once per process); when it is
    not the first, the reason goes to stderr, since C++20 solutions will then fail to compile."""
    import subprocess  # here, not at the top: the zygote imports this module and must not import threading

    compiler = shutil.which("g++")
    if compiler is None:
        return DEFAULT_STANDARDS[0]  # compiling reports the missing compiler as a judge failure (SE)
    refused = []
    for standard in DEFAULT_STANDARDS:
        probe = subprocess.run([compiler, f"-std={standard}", "-x", "c++", "-fsyntax-only", "-"],
                               input=b"int main() {}\n", capture_output=True, timeout=_PROBE_TIMEOUT_S)
        if probe.returncode == 0:
            if refused:
                print(f"mc-judge: {compiler} does not accept {', '.join(refused)}; C++ is compiled as {standard}, "
                      "so solutions using newer features get CE (install g++ >= 10 for C++20)", file=sys.stderr)
            return standard
        refused.append(f"-std={standard}")
    return DEFAULT_STANDARDS[-1]  # g++ accepts none: compiling reports its own error (CE on every submission)


def compile_cpp(source: str, scratch: str, standard: str = "cpp") -> CompileResult:
    """Compile `source` in `scratch` (a folder the sandbox user owns) as `standard`, one of
    problem.CPP_STANDARDS, or "cpp" for default_standard()."""
    standard = default_standard() if standard == "cpp" else check_cpp_standard(standard, "compile_cpp")
    compiler = shutil.which("g++")
    if compiler is None:
        return CompileResult(None, "g++ not found on PATH; install g++ to judge C++", judge_failed=True)
    source_path = os.path.join(scratch, "main.cpp")
    with open(source_path, "w") as f:
        f.write(source)
    sandbox.give_to_sandbox_user(source_path)
    flags = (f"-std={standard}", "-O2", "-pipe", "-o", "main", "main.cpp")

    def exec_compiler(zygote_pid: int) -> NoReturn:
        os.chdir(scratch)
        resource.setrlimit(resource.RLIMIT_CPU, (COMPILE_CPU_S, COMPILE_CPU_S + 1))
        resource.setrlimit(resource.RLIMIT_AS, (COMPILE_MEMORY_BYTES, COMPILE_MEMORY_BYTES))
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 << 20, 256 << 20))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        sandbox.drop_privileges()
        sandbox.die_with_parent(zygote_pid)
        env = {"PATH": "/usr/bin:/bin", "TMPDIR": scratch, "LANG": "C"}
        os.execve(compiler, [compiler, *flags], env)

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
