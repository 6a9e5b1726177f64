"""`mc-plot RUN_DIR`: draw the run's main curves from RUN/metrics.jsonl to PNG files.

Each panel plots every logged key that matches one of its patterns, so the plot follows whatever the
driver logs under those names (e.g. `rollout/reward_mean`, `eval/pass@1`). MoE runs also get
moe_expert_load.png: each layer's tokens per expert over the steps, as a heatmap relative to the mean.
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
    "moe_load": ["moe/load_max_over_mean*"],
    "moe_router": ["moe/router_entropy", "moe/aux_loss", "moe/dropped_token_fraction", "moe/z_loss"],
}
EXPERT_LOAD = "moe/expert_tokens"  # [layer][expert] token counts per step (trainer/moe_diagnostics.py)


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
    rows = read_metrics(run_dir)
    data = series(rows)
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
    load = expert_load(rows)
    if load is not None:
        written.append(plot_expert_load(*load, out_dir / "moe_expert_load.png", run_dir.name))
    return written


def expert_load(rows: list[dict[str, Any]]):
    """(steps, [step][layer][expert] tokens relative to the layer's mean) from the rows that logged
    moe/expert_tokens (the last row of a step wins; rows of another shape are left out), or None."""
    import numpy as np

    by_step = {int(row["step"]): row[EXPERT_LOAD] for row in rows if row.get(EXPERT_LOAD)}
    if not by_step:
        return None
    steps = sorted(by_step)
    shape = np.shape(by_step[steps[-1]])
    steps = [s for s in steps if np.shape(by_step[s]) == shape]
    counts = np.array([by_step[s] for s in steps], dtype=float)
    mean = counts.mean(axis=-1, keepdims=True)
    return steps, np.divide(counts, mean, out=np.zeros_like(counts), where=mean > 0)


def plot_expert_load(steps: list[int], load, path: Path, title: str) -> Path:
    """One heatmap per layer (experts up, steps across), one colour scale: 1 is the mean load."""
    import matplotlib.pyplot as plt

    layers = load.shape[1]
    cols = min(layers, 8)
    rows = math.ceil(layers / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols + 1, 1.8 * rows + 0.8), dpi=100, squeeze=False,
                             sharex=True, sharey=True)
    extent = (steps[0] - 0.5, steps[-1] + 0.5, -0.5, load.shape[2] - 0.5)
    image = None
    for layer, ax in enumerate(axes.flat):
        if layer >= layers:
            ax.axis("off")
            continue
        image = ax.imshow(load[:, layer, :].T, aspect="auto", origin="lower", extent=extent, vmin=0.0,
                          vmax=max(2.0, float(load.max())), cmap="viridis", interpolation="nearest")
        ax.set_title(f"layer {layer}", fontsize=8)
        ax.tick_params(labelsize=6)
    fig.supxlabel("RL step", fontsize=8)
    fig.supylabel("expert", fontsize=8)
    fig.suptitle(f"{title}: tokens per expert / layer mean", fontsize=9)
    fig.colorbar(image, ax=axes, shrink=0.8, fraction=0.02, pad=0.01)
    fig.savefig(path)
    plt.close(fig)
    return path


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
