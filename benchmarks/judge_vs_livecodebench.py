"""The judge against LiveCodeBench's own grader, on the same batch in the same run.

The batch is benchmarks/judge_throughput.py's: 120 Python submissions (a third of them wrong) x 10 tests
over four stdio problems. LiveCodeBench's grader is run as its evaluation runs it (lcb_runner's
codegen_metrics: a process pool of --workers processes; per submission a multiprocessing Manager and a
forked process that execs the code once and calls it per test, in-process, stopping at the first
failure); ours is JudgePool(workers=--workers) with its defaults (workers pinned to CPUs when there is one
for each, judge/affinity.py), warmed up, each test in its own sandboxed process. Rounds
alternate the two; the figures are medians over rounds. Both must agree on which submissions pass.

LiveCodeBench is not on PyPI and its code is not ours to ship: point --lcb at a checkout
(git clone https://github.com/LiveCodeBench/LiveCodeBench; it needs numpy and tqdm only for this).

    .venv/bin/python benchmarks/judge_vs_livecodebench.py --lcb ../LiveCodeBench [--rounds 5] [--out benchmarks/results/judge_vs_livecodebench.md]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from judge_throughput import _batch, _problems  # noqa: E402

from judge.pool import JudgePool  # noqa: E402


def _cpu_self_and_children() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _process_cpu(pid: int) -> float:
    """CPU seconds of a live process and of its reaped children."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _lcb_grader(checkout: Path):
    if not (checkout / "lcb_runner" / "evaluation" / "testing_util.py").exists():
        sys.exit(f"{checkout}: not a LiveCodeBench checkout (no lcb_runner/evaluation/testing_util.py); "
                 "git clone https://github.com/LiveCodeBench/LiveCodeBench and pass its folder as --lcb")
    sys.path.insert(0, str(checkout))
    from lcb_runner.evaluation.compute_code_generation_metrics import codegen_metrics
    return codegen_metrics


@contextlib.contextmanager
def _quiet_fds():
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)


def run_lcb(codegen_metrics, batch, workers: int) -> tuple[float, float, list[bool]]:
    samples = [{"input_output": json.dumps({"inputs": [t.input for t in p.tests],
                                            "outputs": [t.output for t in p.tests], "fn_name": None})}
               for p, _, _ in batch]
    generations = [[code] for _, code, _ in batch]
    cpu, start = _cpu_self_and_children(), time.perf_counter()
    with _quiet_fds():  # its progress bar and prints; its faulthandler needs real std streams
        _, results, _ = codegen_metrics(samples, generations, k_list=[1], num_process_evaluate=workers, timeout=6)
    wall, cpu = time.perf_counter() - start, _cpu_self_and_children() - cpu  # its pool is reaped: CPU counted
    return wall, cpu, [all(r is True for r in results[i][0]) for i in range(len(batch))]


def run_ours(pool: JudgePool, batch) -> tuple[float, float, list[bool], int]:
    zygotes = pool.zygote_pids
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    zygote_cpu = [_process_cpu(z) for z in zygotes]
    start = time.perf_counter()
    results = pool.judge_many(batch)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    used = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime
    used += sum(_process_cpu(z) - before for z, before in zip(zygotes, zygote_cpu))
    return wall, used, [r.verdict.value == "AC" for r in results], sum(len(r.tests) for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lcb", type=Path, required=True, help="a LiveCodeBench checkout")
    parser.add_argument("--submissions", type=int, default=120)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, help="write the figures here (Markdown, and JSON beside it)")
    args = parser.parse_args()
    codegen_metrics = _lcb_grader(args.lcb)
    rng = random.Random(0)
    batch = _batch(rng, args.submissions, _problems(rng))
    rounds = []
    with JudgePool(workers=args.workers) as pool:
        pool.judge_many(batch[: 4 * args.workers])  # zygotes up and warm
        for _ in range(args.rounds):
            ours_wall, ours_cpu, ours_pass, runs = run_ours(pool, batch)
            lcb_wall, lcb_cpu, lcb_pass = run_lcb(codegen_metrics, batch, args.workers)
            rounds.append({"ours_s": ours_wall, "ours_cpu_s": ours_cpu, "lcb_s": lcb_wall, "lcb_cpu_s": lcb_cpu,
                           "disagreements": sum(a != b for a, b in zip(ours_pass, lcb_pass)), "test_runs": runs})
            print(f"round {len(rounds)}: judge {ours_wall:.3f} s ({ours_cpu:.2f} CPU s), LiveCodeBench "
                  f"{lcb_wall:.3f} s ({lcb_cpu:.2f} CPU s), ratio {lcb_wall / ours_wall:.2f}")
    median = {k: statistics.median(r[k] for r in rounds) for k in ("ours_s", "ours_cpu_s", "lcb_s", "lcb_cpu_s")}
    figures = {
        "submissions": len(batch), "tests_per_submission": len(batch[0][0].tests), "workers": args.workers,
        "accepted": sum(ours_pass), "test_runs": rounds[0]["test_runs"], "rounds": rounds,
        **{f"median_{k}": round(v, 3) for k, v in median.items()},
        "speedup_wall": round(median["lcb_s"] / median["ours_s"], 2),
        "speedup_cpu": round(median["lcb_cpu_s"] / median["ours_cpu_s"], 2),
        "disagreements": max(r["disagreements"] for r in rounds),
        "cpus": len(os.sched_getaffinity(0)), "loadavg_1m_end": round(os.getloadavg()[0], 2),
    }
    text = (f"{len(batch)} submissions x {figures['tests_per_submission']} tests ({figures['test_runs']} test runs "
            f"with early stop), {args.workers} workers, {args.rounds} alternating rounds, medians:\n\n"
            "| grader | wall s | CPU s (all processes) |\n|---|---:|---:|\n"
            f"| mc-judge (a sandboxed process per test) | {median['ours_s']:.3f} | {median['ours_cpu_s']:.2f} |\n"
            f"| LiveCodeBench codegen_metrics (in-process per submission) | {median['lcb_s']:.3f} | {median['lcb_cpu_s']:.2f} |\n\n"
            f"LiveCodeBench / mc-judge: **{figures['speedup_wall']}x wall**, {figures['speedup_cpu']}x CPU; "
            f"pass/fail disagreements: {figures['disagreements']}; load average at the end {figures['loadavg_1m_end']}.\n")
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        for path, content in ((args.out, text), (args.out.with_suffix(".json"), json.dumps(figures, indent=1) + "\n")):
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_text(content)
            os.replace(tmp, path)
    if figures["disagreements"]:
        sys.exit(f"the graders disagree on {figures['disagreements']} submissions")


if __name__ == "__main__":
    main()
