"""Learning curves of a study, overlaid per axis value: one PNG per axis (per study for listed points),
one panel per metric, every run a line in the colour of its value on that axis (seeds share a colour)."""
from __future__ import annotations

import math
import re
from pathlib import Path

from megatron_mc.study.report_table import MOE, RunFigures

TRAINING = ["rollout/reward_mean", "rollout/response_len_mean", "rollout/truncation_ratio"]
OVERALL_HELD_OUT = re.compile(r"^eval/pass@\d+$")


def curve_metrics(figures: list[RunFigures]) -> list[str]:
    """Held-out pass@k overall, the main training curves, and the MoE diagnostics when logged."""
    keys = sorted({key for fig in figures for key in fig.curves})
    held_out = [k for k in keys if OVERALL_HELD_OUT.match(k)]
    return held_out + [k for k in TRAINING if k in keys] + [k for k in keys if MOE.match(k)]


def plot_axis(figures: list[RunFigures], axis: str | None, path: Path, title: str) -> Path:
    """`axis`: the config key whose values colour the lines; None: each listed point has its colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = curve_metrics(figures)
    values = list(dict.fromkeys(_value(fig, axis) for fig in figures))
    colours = {value: plt.get_cmap("tab10")(i % 10) for i, value in enumerate(values)}
    cols = min(3, len(metrics))
    rows = math.ceil(len(metrics) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), dpi=100, squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        labelled = set()
        for run in figures:
            if metric not in run.curves:
                continue
            steps, points = run.curves[metric]
            value = _value(run, axis)
            ax.plot(steps, points, color=colours[value], marker="o" if len(steps) < 30 else None, markersize=3,
                    alpha=0.8, label=None if value in labelled else value)
            labelled.add(value)
        ax.set_title(metric, fontsize=9)
        ax.set_xlabel("RL step", fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _value(fig: RunFigures, axis: str | None) -> str:
    return fig.run.label if axis is None else f"{axis}={fig.run.point[axis]}"
