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
from typing import Iterable, Union

AUTO = "auto"
NONE = "none"
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
        cpus.update(range(low, high + 1))
    return sorted(cpus)


def check_cpu_choice(cpus: CpuChoice, key: str = "cpus") -> None:
    """The form of a choice, without the machine: for configs checked away from the node that runs them."""
    if cpus is None or cpus in (AUTO, NONE):
        return
    if isinstance(cpus, str):
        try:
            parse_cpu_list(cpus)
        except ValueError as e:
            raise ValueError(f"{key}: {e}") from None
    elif not all(isinstance(c, int) and c >= 0 for c in cpus):
        raise ValueError(f"{key}: CPU numbers must be integers >= 0, got {cpus!r}")


def worker_cpus(cpus: CpuChoice, workers: int) -> list[int] | None:
    """The CPUs a pool of `workers` pins its workers to, round robin; None when they are not pinned."""
    if cpus is None or cpus == NONE:
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if cpus == AUTO:
        return allowed if workers >= len(allowed) else None
    check_cpu_choice(cpus)
    chosen = parse_cpu_list(cpus) if isinstance(cpus, str) else sorted(set(cpus))
    if not chosen:
        raise ValueError(f"cpus: no CPU given; give some, {AUTO!r} or {NONE!r}")
    outside = [c for c in chosen if c not in set(allowed)]
    if outside:
        raise ValueError(f"cpus: {outside} are not among the CPUs this process may run on {allowed}")
    return chosen


def pin_this_process(cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
