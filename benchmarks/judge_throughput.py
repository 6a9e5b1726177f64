"""Judge throughput against a baseline that starts `python3 solution.py` per test.

The same batch (>= 120 Python submissions, mixed correct and wrong, 10 tests each) is judged by
JudgePool(workers=2) and by the baseline with the same parallelism (2 threads, each starting one
interpreter per test, comparing with the same comparison and stopping at the same first failure).
Both must agree on every verdict. Also measured: the per-test cost of a trivial program on one worker.

    .venv/bin/python benchmarks/judge_throughput.py [--submissions 120] [--json benchmarks/results/judge_throughput.json]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from judge.compare import outputs_match
from judge.pool import JudgePool
from judge.problem import Problem, TestCase

TESTS_PER_PROBLEM = 10


def _problems(rng: random.Random) -> dict[str, Problem]:
    def make(pid, gen, solve):
        tests = []
        for _ in range(TESTS_PER_PROBLEM):
            data = gen()
            tests.append(TestCase(data, solve(data)))
        return Problem(id=pid, kind="stdio", tests=tests, time_limit_s=5.0, memory_limit_mb=512)

    def numbers():
        n = rng.randint(50, 2000)
        return f"{n}\n{' '.join(str(rng.randint(-10**6, 10**6)) for _ in range(n))}\n"

    return {
        "sum": make("sum", lambda: f"{rng.randint(-10**9, 10**9)} {rng.randint(-10**9, 10**9)}\n",
                    lambda d: f"{sum(map(int, d.split()))}\n"),
        "sort": make("sort", numbers, lambda d: " ".join(map(str, sorted(map(int, d.split()[1:])))) + "\n"),
        "prefix": make("prefix", numbers,
                       lambda d: "\n".join(str(sum(map(int, d.split()[1:k + 2]))) for k in range(int(d.split()[0]))) + "\n"),
        "max": make("max", numbers, lambda d: f"{max(map(int, d.split()[1:]))}\n"),
    }


CORRECT = {
    "sum": ["a, b = map(int, input().split())\nprint(a + b)\n",
            "import sys\nprint(sum(map(int, sys.stdin.read().split())))\n"],
    "sort": ["n = int(input())\nprint(*sorted(map(int, input().split())))\n",
             "import sys\ndata = sys.stdin.read().split()\nprint(' '.join(map(str, sorted(int(x) for x in data[1:]))))\n"],
    "prefix": ["from itertools import accumulate\nn = int(input())\nprint('\\n'.join(map(str, accumulate(map(int, input().split())))))\n",
               "n = int(input())\ns = 0\nout = []\nfor x in map(int, input().split()):\n    s += x\n    out.append(s)\nprint('\\n'.join(map(str, out)))\n"],
    "max": ["input()\nprint(max(map(int, input().split())))\n",
            "import sys\nprint(max(int(x) for x in sys.stdin.read().split()[1:]))\n"],
}
WRONG = {
    "sum": ["a, b = map(int, input().split())\nprint(a - b if a > 0 else a + b)\n"],
    "sort": ["n = int(input())\nprint(*sorted(map(int, input().split()), reverse=n % 3 == 0))\n"],
    "prefix": ["n = int(input())\nxs = list(map(int, input().split()))\nprint('\\n'.join(str(sum(xs[:k])) for k in range(1, n + 1)) if n < 500 else 0)\n"],
    "max": ["input()\nxs = list(map(int, input().split()))\nprint(max(xs[:-1]) if len(xs) % 4 == 0 else max(xs))\n"],
}


def _batch(rng: random.Random, size: int, problems: dict[str, Problem]) -> list[tuple[Problem, str, str]]:
    batch = []
    for i in range(size):
        pid = list(problems)[i % len(problems)]
        pool = WRONG[pid] if i % 3 == 2 else CORRECT[pid]
        batch.append((problems[pid], rng.choice(pool), "python"))
    return batch


def _baseline_one(problem: Problem, code: str, scratch: str) -> str:
    with tempfile.TemporaryDirectory(dir=scratch) as folder:
        path = os.path.join(folder, "solution.py")
        with open(path, "w") as f:
            f.write(code)
        for test in problem.tests:
            try:
                done = subprocess.run([sys.executable, path], input=test.input.encode(), capture_output=True,
                                      timeout=2 * problem.time_limit_s + 1, cwd=folder)
            except subprocess.TimeoutExpired:
                return "TLE"
            if done.returncode != 0:
                return "RE"
            if not outputs_match(test.output, done.stdout.decode(errors="replace"), problem.comparison):
                return "WA"
    return "AC"


def _baseline(batch, workers: int) -> tuple[float, list[str]]:
    with tempfile.TemporaryDirectory() as scratch, ThreadPoolExecutor(workers) as executor:
        start = time.perf_counter()
        verdicts = list(executor.map(lambda s: _baseline_one(s[0], s[1], scratch), batch))
        return time.perf_counter() - start, verdicts


def _ours(pool: JudgePool, batch) -> tuple[float, list[str]]:
    start = time.perf_counter()
    results = pool.judge_many(batch)
    return time.perf_counter() - start, [r.verdict.value for r in results]


def _cpu_s() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _trivial_overhead(tests: int) -> tuple[float, float, float]:
    """A program that echoes one number, one worker: wall seconds per test (ours, baseline) and our CPU
    seconds per test in all processes (judging process, zygote, children; zygote start-up included).
    CPU time is the figure that contention from other work on the machine disturbs least."""
    problem = Problem(id="echo", kind="stdio", tests=[TestCase(f"{i}\n", f"{i}\n") for i in range(tests)],
                      time_limit_s=2.0, memory_limit_mb=256)
    code = "print(input())\n"
    cpu_before = _cpu_s()
    with JudgePool(workers=1) as pool:
        pool.judge(problem, code)  # warm the zygote
        start = time.perf_counter()
        result = pool.judge(problem, code)
        ours = (time.perf_counter() - start) / tests
    cpu_per_test = (_cpu_s() - cpu_before) / (2 * tests)  # zygotes are reaped at close: their CPU counts
    assert result.passed == tests, result.to_dict()
    baseline_tests = max(20, tests // 5)
    small = Problem(id="echo", kind="stdio", tests=problem.tests[:baseline_tests], time_limit_s=2.0)
    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        assert _baseline_one(small, code, scratch) == "AC"
        baseline = (time.perf_counter() - start) / baseline_tests
    return ours, baseline, cpu_per_test


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=120)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--trivial-tests", type=int, default=500)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    rng = random.Random(0)
    problems = _problems(rng)
    batch = _batch(rng, args.submissions, problems)
    load_before = os.getloadavg()[0]
    with JudgePool(workers=args.workers) as pool:
        pool.judge_many(batch[:args.workers])  # zygotes up and warm
        ours_s, ours_verdicts = _ours(pool, batch)
    baseline_s, baseline_verdicts = _baseline(batch, args.workers)
    mismatches = sum(a != b for a, b in zip(ours_verdicts, baseline_verdicts))
    tests_run = sum(len(p.tests) for p, _, _ in batch)
    ours_per_test, baseline_per_test, cpu_per_test = _trivial_overhead(args.trivial_tests)
    figures = {
        "submissions": len(batch),
        "tests_per_submission": TESTS_PER_PROBLEM,
        "accepted": ours_verdicts.count("AC"),
        "workers": args.workers,
        "judge_s": round(ours_s, 3),
        "baseline_s": round(baseline_s, 3),
        "speedup": round(baseline_s / ours_s, 2),
        "verdict_mismatches": mismatches,
        "trivial_ms_per_test_judge": round(1000 * ours_per_test, 3),
        "trivial_ms_per_test_baseline": round(1000 * baseline_per_test, 3),
        "trivial_cpu_ms_per_test_judge": round(1000 * cpu_per_test, 3),
        "loadavg_1m_before": round(load_before, 2),
        "loadavg_1m_after": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }
    print(f"batch: {len(batch)} submissions x {TESTS_PER_PROBLEM} tests (<= {tests_run} runs), "
          f"{figures['accepted']} accepted, {args.workers} workers")
    print(f"  judge (zygote, sandboxed):       {ours_s:8.2f} s")
    print(f"  baseline (python3 per test):     {baseline_s:8.2f} s")
    print(f"  speedup:                         {baseline_s / ours_s:8.2f} x   (target >= 6x)")
    print(f"  verdict mismatches:              {mismatches}")
    print(f"trivial program, one worker: {1000 * ours_per_test:.2f} ms/test judge, "
          f"{1000 * baseline_per_test:.2f} ms/test baseline   (target < 3 ms); "
          f"judge CPU in all processes {1000 * cpu_per_test:.2f} ms/test")
    print(f"load average (1 min): {figures['loadavg_1m_before']} before, {figures['loadavg_1m_after']} after")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json.with_suffix(".tmp")
        tmp.write_text(json.dumps(figures, indent=1) + "\n")
        os.replace(tmp, args.json)
    if mismatches:
        sys.exit(f"judge and baseline disagree on {mismatches} verdicts")


if __name__ == "__main__":
    main()
