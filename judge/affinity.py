"""Which CPU each judge worker runs on.

A pinned worker's zygotes, and every test child they fork (a child inherits its parent's affinity), run on
one CPU of their own: pool worker i on the i-th of the chosen CPUs, round robin when there are more workers.

Why: on the 2-core box, unpinned, one core sat idle 11% of the batch's time while a test process waited
on the other (a process woken through a pipe is queued where its waker runs), and test children ran on
a core other than their zygote's, away from the caches it had warmed. Pinned, the 120 x 10 batch of
benchmarks/judge_vs_livecodebench.py took about 20% less wall time and 10% less CPU
(benchmarks/results/judge_vs_livecodebench_cpu.md). Judging hosts pin their judges to cores for the same
reasons, and for steadier timings.

`cpus` as JudgePool, mc-judge --cpus and the training config's judge.cpus take it:
  "auto"            the default: pinned to the CPUs this process may run on (os.sched_getaffinity) when the
                    pool has a worker for each of them, so that pinning takes no CPU from other work; with
                    fewer workers, not pinned (several pools on one machine, in Ray actors say, would
                    otherwise all crowd onto the first CPUs);
  "0-3,8" / [0, 8]  pinned to these CPUs (each one this process may run on): a judge given CPUs of its own
                    on a node shared with other work;
  None / "none"     not pinned: the kernel places every process.
"""
from __future__ import annotations

import os
import sys
from typing import Iterable, Union

AUTO = "auto"
NONE = "none"
MAX_CPUS = 8192  # CPU numbers go up to the kernel's NR_CPUS (at most 8192 on x86-64)
CpuChoice = Union[str, Iterable[int], None]


def parse_cpu_list(text: str) -> list[int]:
    """'0-3,8' -> [0, 1, 2, 3, 8] (the kernel's cpulist format, as taskset -c takes it)."""
    cpus: set[int] = set()
    for part in text.replace(" ", "").split(","):
        first, dash, last = part.partition("-")
        try:
            low, high = int(first), int(last if dash else first)
        except ValueError:
            raise ValueError(f"{text!r} is not a CPU list such as '0-3,8' (or {AUTO!r}, or {NONE!r})") from None
        if low < 0 or high < low:
            raise ValueError(f"bad range {part!r} in {text!r}")
        if high >= MAX_CPUS:
            raise ValueError(f"CPU {high} in {text!r}: CPU numbers go up to {MAX_CPUS - 1}")
        cpus.update(range(low, high + 1))
    return sorted(cpus)


def check_cpu_choice(cpus: CpuChoice, key: str | None = None) -> list[int] | str | None:
    """The choice in its checked form (a list of CPU numbers, AUTO, or None), without asking the machine:
    for configs checked away from the node that runs them. Errors start with `key: ` when given."""
    try:
        if cpus is None or cpus == NONE:
            return None
        if cpus == AUTO:
            return AUTO
        if isinstance(cpus, str):
            return parse_cpu_list(cpus)
        if isinstance(cpus, (bytes, int)) or not isinstance(cpus, Iterable):
            raise ValueError(f"{cpus!r} is not a CPU list such as '0-3,8' or [0, 1] (or {AUTO!r}, or {NONE!r})")
        chosen = list(cpus)
        if not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c < MAX_CPUS for c in chosen):
            raise ValueError(f"CPU numbers are integers from 0 to {MAX_CPUS - 1}, got {chosen!r}")
        return sorted(set(chosen))
    except ValueError as e:
        raise ValueError(f"{key}: {e}" if key else str(e)) from None


def worker_cpus(cpus: CpuChoice, workers: int, key: str = "cpus") -> list[int] | None:
    """The CPUs a pool of `workers` pins its workers to (cpu_for); None when they are not pinned. Errors name
    `key`."""
    checked = check_cpu_choice(cpus, key)
    if checked is None:
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if checked == AUTO:
        return allowed if workers >= len(allowed) else None
    if not checked:
        raise ValueError(f"{key}: no CPU given; give some, {AUTO!r} or {NONE!r}")
    outside = [c for c in checked if c not in set(allowed)]
    if outside:
        raise ValueError(f"{key}: {outside} are not among the CPUs this process may run on {allowed}")
    return checked


def cpu_for(worker: int, cpus: list[int] | None) -> int | None:
    """Worker i's CPU: the i-th, round robin."""
    return cpus[worker % len(cpus)] if cpus else None


def pin_this_process(cpu: int | None) -> None:
    """Run on `cpu` from now on (children inherit it). A CPU gone since the pool chose it (taken offline,
    out of a shrunk cpuset) leaves the process unpinned, with a line on stderr: judging goes on."""
    if cpu is None:
        return
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError as e:
        print(f"mc-judge zygote {os.getpid()}: cannot run on CPU {cpu} ({e}); running unpinned", file=sys.stderr)
