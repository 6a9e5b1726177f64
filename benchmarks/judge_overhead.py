"""Where one test's cost goes in the judge: CPU milliseconds and page faults per test, in the zygote (the
parent) and in the test child, added one step at a time from a bare fork to the whole test, on both paths
for a test child (the C path of judge/_fastchild.c, and the Python path it falls back to), then the whole
path through JudgePool (judging process, zygote, child) for a trivial program, on each path.

Each step forks from this process after it has done what the zygote does before its first fork (its
preloaded modules and the judge's own, the interpreter's warm-up, the submissions' std streams installed,
every symbol bound at start), so a step costs here what it costs there; the child exits after the step.
CPU time is read from getrusage (children: what the reaped children used), so load from other work on the
machine disturbs it less than wall time. The pool rows alternate the two paths over --rounds rounds and
report medians.

    .venv/bin/python benchmarks/judge_overhead.py [--tests 1000] [--rounds 3] [--json FILE]
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

if os.environ.get("LD_BIND_NOW") != "1":  # as the zygote runs (judge/zygote.py)
    os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "LD_BIND_NOW": "1"})

from judge import executor, sandbox  # noqa: E402
from judge.zygote import FLAVORS, _address_space_in_use, _compile_quietly  # noqa: E402

for _name in FLAVORS["lean"]:
    importlib.import_module(_name)
sandbox.filter_templates()
executor.warm_up_interpreter()


def _usage() -> tuple[float, float, int, int]:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return (own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime, own.ru_minflt,
            children.ru_minflt)


def _measure(run_one, tests: int) -> dict:
    before, start = _usage(), time.perf_counter()
    for _ in range(tests):
        run_one()
    wall, after = time.perf_counter() - start, _usage()
    per = lambda i, scale=1000.0: round(scale * (after[i] - before[i]) / tests, 3)  # noqa: E731
    return {"wall_ms": round(1000 * wall / tests, 3), "parent_cpu_ms": per(0), "child_cpu_ms": per(1),
            "parent_faults": per(2, 1.0), "child_faults": per(3, 1.0)}


def _bare_fork() -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)


def _c_fork_then_python_exit() -> None:
    pid = executor._fastchild.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)


def fast_steps(tests: int, scratch: str) -> list[tuple[str, dict]]:
    """The C path (judge/_fastchild.c), as the zygote runs it: steps in C, then the harness."""
    fast = executor._fastchild
    limits = sandbox.Limits(2.0, 256)
    program = executor.PythonProgram(_compile_quietly("print(input())\n"), "stdio", None, sandbox.SeccompProgram(),
                                     _address_space_in_use())
    program.make_main()
    spec, root, zygote = program.fast_spec(limits), scratch.encode(), os.getpid()

    def in_child(then):
        def run_one():
            handle = fast.spawn(None, root, zygote, *spec)
            if handle is None:
                then()
            fast.start(handle, b"5\n")
            fast.finish(handle, time.monotonic() + 5.0, b"", 1 << 20, 8192, root)
        return run_one

    steps = [
        ("fork + exit of a zygote-sized process, in C", fast.fork_exit),
        ("+ back into the interpreter, os._exit", _c_fork_then_python_exit),
        ("+ the whole set-up in C (pipes, session, folder, rlimits, user, death with the zygote, seccomp), "
         "collect, reap", in_child(lambda: os._exit(0))),
        ("+ Python harness running print(input())", in_child(lambda: executor.python_child(program))),
    ]
    executor.install_stdio()  # as the zygote; nothing is printed before the figures are in
    try:
        return [(name, _measure(run_one, tests)) for name, run_one in steps]
    finally:
        executor.flush_stdio()


def child_steps(tests: int, scratch: str) -> list[tuple[str, dict]]:
    limits = sandbox.Limits(2.0, 256)
    python_filter = sandbox.SeccompProgram()
    program = executor.PythonProgram(_compile_quietly("print(input())\n"), "stdio", None, python_filter,
                                     _address_space_in_use())

    def in_child(child_main, workdir_root=None):
        def run_one():
            child = executor.Child(child_main, workdir_root)
            child.start(b"5\n")
            child.finish(5.0, 1 << 20)
        return run_one

    def setup_to(step: int):
        def child_main(zygote_pid: int):
            if step >= 1:
                sandbox.apply_rlimits(limits, program.address_space(limits))
            if step >= 2:
                sandbox.drop_privileges()
                sandbox.die_with_parent(zygote_pid)
            if step >= 3:
                python_filter.load()
            os._exit(0)
        return child_main

    steps = [
        ("fork + exit of a zygote-sized process", _bare_fork),
        ("+ test plumbing (5 pipes, session, collect, reap)", in_child(lambda _: os._exit(0))),
        ("+ private working folder per test", in_child(lambda _: os._exit(0), scratch)),
        ("+ rlimits", in_child(setup_to(1), scratch)),
        ("+ sandbox user, death with the zygote", in_child(setup_to(2), scratch)),
        ("+ seccomp filter", in_child(setup_to(3), scratch)),
        ("+ Python harness running print(input())",
         in_child(lambda pid: executor.enter_sandbox(program, limits, pid), scratch)),
    ]
    return [(name, _measure(run_one, tests)) for name, run_one in steps]


def pool_path(tests: int, fast: bool = True) -> dict:
    """The whole path for `print(input())`: CPU per test in the judging process, the zygote (its own
    work) and the children, read from /proc for the zygote; on the C path or the Python one."""
    from judge.pool import JudgePool
    from judge.problem import Problem, TestCase

    def zygote_usage(pid: int) -> tuple[float, float, int, int]:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        return ((int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick,
                int(fields[7]), int(fields[8]))

    problem = Problem(id="echo", kind="stdio", tests=[TestCase(f"{i}\n", f"{i}\n") for i in range(tests)],
                      time_limit_s=2.0, memory_limit_mb=256)
    with JudgePool(workers=1) as pool:
        os.environ["MC_JUDGE_FASTCHILD"] = "1" if fast else "0"  # read by the zygote its first job starts
        try:
            pool.judge(problem, "print(input())\n")
        finally:
            del os.environ["MC_JUDGE_FASTCHILD"]
        assert pool._zygotes[(0, "lean")].info["fast_path"] is fast
        zygote = pool.zygote_pids[0]
        own_before, zygote_before, start = resource.getrusage(resource.RUSAGE_SELF), zygote_usage(zygote), \
            time.perf_counter()
        result = pool.judge(problem, "print(input())\n")
        wall, zygote_after = time.perf_counter() - start, zygote_usage(zygote)
        own_after = resource.getrusage(resource.RUSAGE_SELF)
    assert result.passed == tests, result.to_dict()
    own = own_after.ru_utime + own_after.ru_stime - own_before.ru_utime - own_before.ru_stime
    figures = {
        "wall_ms": 1000 * wall / tests,
        "judging_process_cpu_ms": 1000 * own / tests,
        "zygote_cpu_ms": 1000 * (zygote_after[0] - zygote_before[0]) / tests,
        "child_cpu_ms": 1000 * (zygote_after[1] - zygote_before[1]) / tests,
        "zygote_faults": (zygote_after[2] - zygote_before[2]) / tests,
        "child_faults": (zygote_after[3] - zygote_before[3]) / tests,
    }
    figures["total_cpu_ms"] = figures["judging_process_cpu_ms"] + figures["zygote_cpu_ms"] + figures["child_cpu_ms"]
    return {k: round(v, 3) for k, v in figures.items()}


def _steps_table(steps: list[tuple[str, dict]]) -> list[str]:
    lines = ["| step (cumulative) | child CPU ms | zygote CPU ms | child faults | zygote faults | added CPU ms |",
             "|---|---:|---:|---:|---:|---:|"]
    previous = 0.0
    for name, m in steps:
        total = m["child_cpu_ms"] + m["parent_cpu_ms"]
        lines.append(f"| {name} | {m['child_cpu_ms']:.3f} | {m['parent_cpu_ms']:.3f} | {m['child_faults']:.0f} | "
                     f"{m['parent_faults']:.0f} | {total - previous:+.3f} |")
        previous = total
    return lines


def markdown(fast: list[tuple[str, dict]], steps: list[tuple[str, dict]], pools: dict[str, dict]) -> str:
    lines = ["C path (judge/_fastchild.c):", "", *_steps_table(fast), "",
             "Python path (no extension, or MC_JUDGE_FASTCHILD=0):", "", *_steps_table(steps), "",
             "Whole path through JudgePool(workers=1), `print(input())`, per test (medians over rounds):", "",
             "| path | judging process CPU ms | zygote CPU ms | child CPU ms | total CPU ms | zygote faults | child faults | wall ms |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for path, pool in pools.items():
        lines.append(f"| {path} | {pool['judging_process_cpu_ms']:.3f} | {pool['zygote_cpu_ms']:.3f} | "
                     f"{pool['child_cpu_ms']:.3f} | {pool['total_cpu_ms']:.3f} | {pool['zygote_faults']:.0f} | "
                     f"{pool['child_faults']:.0f} | {pool['wall_ms']:.3f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the pool rows, alternating the paths")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if executor._fastchild is None:
        sys.exit("judge/_fastchild.c is not built: pip install -e . (with a C compiler) builds it")
    # The zygote's scratch is a tmpfs when it runs as root (its private /tmp); elsewhere /tmp. A tmpfs here.
    root = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    with tempfile.TemporaryDirectory(dir=root) as scratch:
        os.chmod(scratch, 0o711)
        fast = fast_steps(args.tests, scratch)
        steps = child_steps(args.tests, scratch)
    rounds: dict[str, list[dict]] = {"C": [], "Python": []}
    for _ in range(args.rounds):
        for path in rounds:
            rounds[path].append(pool_path(args.tests, fast=path == "C"))
    pools = {path: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for path, runs in rounds.items()}
    print(markdown(fast, steps, pools), end="")
    if args.json:
        tmp = args.json.with_suffix(".tmp")
        figures = {"c_path_steps": dict(fast), "python_path_steps": dict(steps), "pool": pools, "pool_rounds": rounds,
                   "cpus": len(os.sched_getaffinity(0)), "loadavg_1m_end": round(os.getloadavg()[0], 2)}
        tmp.write_text(json.dumps(figures, indent=1) + "\n")
        os.replace(tmp, args.json)


if __name__ == "__main__":
    main()
