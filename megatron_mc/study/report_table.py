"""The study's figures: per run from its metrics.jsonl (the driver logs each held-out evaluation there as
eval/pass@K and eval/difficulty/D/pass@K, the same numbers as RUN/eval/step_N.json), then per point as
mean and spread over the seeds.

Per run: final (last evaluation) and best (highest over evaluations) of every held-out figure; tokens
(response tokens trained on: mean response length x prompts x samples per prompt, summed over steps);
device-hours (the logged steps' wall time, time/step, x the run's GPUs, or train ranks on CPU; startup and
checkpoint saves are not counted); the last value of each MoE diagnostic (moe/*, when the run logged them).
"""
from __future__ import annotations

import re
import statistics
from dataclasses import dataclass

from megatron_mc.metrics.plot import series
from megatron_mc.metrics.sinks import METRICS_FILE, read_metrics
from megatron_mc.study.plan import is_cpu_run
from megatron_mc.study.runs import StudyRun

HELD_OUT = re.compile(r"^eval/(difficulty/[^/]+/)?pass@\d+$")
MOE = re.compile(r"^moe/[a-z_]+$")  # the run-wide diagnostics, not the per-layer ones


@dataclass
class RunFigures:
    run: StudyRun
    values: dict[str, float]  # column -> value, e.g. "final eval/pass@1", "tokens", "gpu_hours"
    curves: dict[str, tuple[list[int], list[float]]]  # metric -> (steps, values), as mc-plot reads them


@dataclass
class Aggregate:
    mean: float
    spread: float | None  # the seeds' sample standard deviation; None with one seed
    n: int


def device_hours_name(runs: list[StudyRun]) -> str:
    return "cpu_hours" if all(is_cpu_run(run.config) for run in runs) else "gpu_hours"


def run_figures(run: StudyRun, hours_name: str) -> RunFigures | None:
    """None for a run that has logged nothing yet."""
    if not (run.run_dir / METRICS_FILE).exists():
        return None
    curves = series(read_metrics(run.run_dir))
    if not curves:
        return None
    values: dict[str, float] = {}
    for key, (_, points) in curves.items():
        if HELD_OUT.match(key):
            values[f"final {key}"] = points[-1]
            values[f"best {key}"] = max(points)
        elif MOE.match(key):
            values[f"final {key}"] = points[-1]
    train = run.config.train
    values["tokens"] = sum(curves.get("rollout/response_len_mean", ([], []))[1]) * train.train_batch_size \
        * train.n_samples_per_prompt
    values[hours_name] = sum(curves.get("time/step", ([], []))[1]) / 3600 * run.config.cluster.total_gpus
    values["steps"] = float(max(max(steps) for steps, _ in curves.values()))
    return RunFigures(run, values, curves)


def aggregate(figures: list[RunFigures]) -> dict[str, dict[str, Aggregate]]:
    """point label -> column -> mean and spread over the point's seeds (in the runs' order)."""
    groups: dict[str, list[RunFigures]] = {}
    for fig in figures:
        groups.setdefault(fig.run.label, []).append(fig)
    out: dict[str, dict[str, Aggregate]] = {}
    for label, members in groups.items():
        columns = dict.fromkeys(key for fig in members for key in fig.values)
        out[label] = {}
        for column in columns:
            values = [fig.values[column] for fig in members if column in fig.values]
            spread = statistics.stdev(values) if len(values) > 1 else None
            out[label][column] = Aggregate(statistics.fmean(values), spread, len(values))
    return out
