"""`mc-plot RUN_DIR`: draw the run's main curves from RUN/metrics.jsonl to PNG files.

Each panel plots every logged key that matches one of its patterns, so the plot follows whatever the
driver logs under those names (e.g. `rollout/reward_mean`, `eval/pass@1`).
"""
from __future__ import annotations

import argparse
import fnmatch
import math
from pathlib import Path
from typing import Any

from megatron_mc.metrics.sinks import numeric_items, read_metrics

PANELS: dict[str, list[str]] = {
    "reward": ["*reward_mean*"],
    "pass_rate": ["*pass_rate*", "*pass@*"],
    "response_length": ["*response_len*"],
    "entropy": ["*/entropy", "entropy"],
    "clip_fraction": ["*clipfrac*", "*clip_frac*"],
    "temperature": ["*temperature*"],
    "masked_truncated": ["*masked_fraction*", "*truncation_ratio*", "*truncated_frac*"],
    "logprob_diff": ["*logprob_diff*"],
    "diversity": ["*diversity*", "*distinct_n*", "*self_similarity*"],
    "step_time": ["time/*"],
}


def series(rows: list[dict[str, Any]]) -> dict[str, tuple[list[int], list[float]]]:
    """key -> (steps, values) over numeric metrics; a step logged twice keeps its last value."""
    by_step: dict[int, dict[str, float]] = {}
    for row in rows:
        by_step[int(row["step"])] = numeric_items({k: v for k, v in row.items() if k not in ("step", "time")})
    out: dict[str, tuple[list[int], list[float]]] = {}
    for step in sorted(by_step):
        for key, value in by_step[step].items():
            if math.isfinite(value):
                steps, values = out.setdefault(key, ([], []))
                steps.append(step)
                values.append(value)
    return out


def panel_keys(keys: list[str], patterns: list[str]) -> list[str]:
    return sorted(k for k in keys if any(fnmatch.fnmatch(k, p) for p in patterns))


def plot_run(run_dir: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    out_dir = Path(out_dir) if out_dir else run_dir / "plots"
    out_dir.mkdir(parents=True, exist_ok=True)
    data = series(read_metrics(run_dir))
    written = []
    for name, patterns in PANELS.items():
        keys = panel_keys(list(data), patterns)
        if not keys:
            continue
        fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
        for key in keys:
            steps, values = data[key]
            ax.plot(steps, values, marker="o" if len(steps) < 30 else None, markersize=3, label=key)
        ax.set_title(f"{run_dir.name}: {name.replace('_', ' ')}")
        ax.set_xlabel("RL step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out_dir / f"{name}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mc-plot", description="Draw a run's main curves to PNG files.")
    parser.add_argument("run_dir", help="the run directory (holds metrics.jsonl)")
    parser.add_argument("--out", help="folder for the PNG files (default RUN_DIR/plots)")
    args = parser.parse_args(argv)
    written = plot_run(args.run_dir, args.out)
    if not written:
        print(f"{args.run_dir}: metrics.jsonl has none of the plotted metrics ({', '.join(PANELS)})")
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
