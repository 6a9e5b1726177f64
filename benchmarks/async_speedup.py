"""Synchronous vs one-step asynchronous RL (train.async) on the tiny default, same samples and updates.

    .venv/bin/python benchmarks/async_speedup.py [--steps 10] [--seconds-per-token 0.01] [--out DIR]
    .venv/bin/python benchmarks/async_speedup.py --learning   # the full tiny default both ways: pass@1

Both runs are the real `mc-train` in disaggregated placement (one train rank, one embedded engine) with
dynamic sampling off, so every step trains the same number of samples. Response lengths have code RL's
long tail: a 160-token budget sampled at temperature 1.2, where most responses stop within ~40 tokens and
a few run to the budget (the measured distribution is in the report). The engine spends
--seconds-per-token sleeping per decoding step, as a GPU engine would while the CPU is free: on 2 shared
cores that is what lets the trainer and the engine run at once at all.

From each run's metrics (steps after the first, whose batch nothing could run ahead of, and before the
last, which also evaluates):
  step wall             time/step
  trainer idle          time/rollout (the trainer waiting for its batch) / step wall
  engine idle           1 - rollout/seconds (one batch's generation, start to end) / step wall
  alone: generation G   the synchronous run's rollout/seconds; training T: its step wall minus G
  overlap               (sync step - async step) / min(G, T): 1.0 when the slower side hides the faster
Target: overlap >= 0.8.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "examples" / "configs" / "tiny_cpu.yaml"
DISAGGREGATED = ["cluster.mode=disaggregate", "cluster.engine_gpus=1"]
MODES = {"sync": [], "async_one_step": ["train.async.mode=one_step"]}


def run(run_dir: Path, sets: list[str]) -> Path:
    args = [sys.executable, "-m", "megatron_mc.driver.cli", "--config", str(TINY)]
    for item in [f"run_dir={run_dir}", "logging.progress=plain", "logging.tensorboard=false", *DISAGGREGATED, *sets]:
        args += ["--set", item]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(REPO)}
    start = time.monotonic()
    result = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"{run_dir.name} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    print(f"{run_dir.name}: {time.monotonic() - start:.0f} s", file=sys.stderr)
    return run_dir


def rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]


def timing(run_dir: Path) -> dict[str, float]:
    steps = [r for r in rows(run_dir) if r["step"] > 0]
    body = steps[1:-1] or steps
    mean = lambda key: statistics.mean(r[key] for r in body)  # noqa: E731
    step, wait, generation = mean("time/step"), mean("time/rollout"), mean("rollout/seconds")
    return {"step_s": step, "rollout_wait_s": wait, "generation_s": generation,
            "trainer_idle": wait / step, "engine_idle": max(0.0, 1 - generation / step),
            "staleness_mean": mean("async/staleness_mean"), "off_policy_tokens": mean("async/off_policy_token_fraction"),
            "response_len_mean": mean("rollout/response_len_mean"), "response_len_max": max(r["rollout/response_len_max"]
                                                                                          for r in body),
            "truncation_ratio": mean("rollout/truncation_ratio"), "steps_measured": len(body)}


def speed(out: Path, steps: int, seconds_per_token: float) -> dict:
    sets = [f"train.max_steps={steps}", "rollout.dynamic_sampling=false", "rollout.max_new_tokens=160",
            "rollout.temperature=1.2", f"rollout.embedded_seconds_per_token={seconds_per_token}", "eval.interval=0",
            "eval.n_samples=1", "eval.k=[1]", "checkpoint.interval=0"]
    figures = {mode: timing(run(out / mode, sets + extra)) for mode, extra in MODES.items()}
    sync, overlapped = figures["sync"], figures["async_one_step"]
    generation, training = sync["generation_s"], sync["step_s"] - sync["generation_s"]
    overlap = (sync["step_s"] - overlapped["step_s"]) / min(generation, training)
    return {"steps": steps, "seconds_per_token": seconds_per_token, "runs": figures, "alone_generation_s": generation,
            "alone_training_s": training, "overlap": overlap, "speedup": sync["step_s"] / overlapped["step_s"]}


def learning(out: Path, modes: list[str]) -> dict:
    result = {}
    for mode in modes:
        extra = MODES[mode]
        evaluated = [r for r in rows(run(out / f"learning_{mode}", extra)) if "eval/pass@1" in r]
        result[mode] = {"before": evaluated[0]["eval/pass@1"], "after": evaluated[-1]["eval/pass@1"],
                        "curve": {r["step"]: r["eval/pass@1"] for r in evaluated}}
    return result


def report(speed_figures: dict | None, learning_figures: dict | None) -> str:
    lines = ["# Synchronous vs one-step asynchronous RL (train.async), tiny default, CPU", ""]
    if speed_figures:
        s = speed_figures
        lines += [f"{s['steps']} steps, {s['seconds_per_token']} s per decoding step, means over steps 2..{s['steps'] - 1}.",
                  "", "| run | step wall (s) | trainer idle | engine idle | staleness mean | off-policy tokens | "
                  "response len mean / max | truncated |", "|---|---|---|---|---|---|---|---|"]
        for mode, f in s["runs"].items():
            lines.append(f"| {mode} | {f['step_s']:.2f} | {f['trainer_idle']:.0%} | {f['engine_idle']:.0%} | "
                         f"{f['staleness_mean']:.2f} | {f['off_policy_tokens']:.0%} | {f['response_len_mean']:.0f} / "
                         f"{f['response_len_max']:.0f} | {f['truncation_ratio']:.0%} |")
        lines += ["", f"Alone (from the synchronous run): generation {s['alone_generation_s']:.2f} s, training "
                  f"{s['alone_training_s']:.2f} s per step. Speed-up {s['speedup']:.2f}x; overlap "
                  f"**{s['overlap']:.2f}** (target >= 0.8)."]
    if learning_figures:
        lines += ["", "Learning check (the tiny default's 60 steps, disaggregated):", "",
                  "| run | held-out pass@1 before | after |", "|---|---|---|"]
        for mode, f in learning_figures.items():
            lines.append(f"| {mode} | {100 * f['before']:.1f}% | {100 * f['after']:.1f}% |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--seconds-per-token", type=float, default=0.01)
    parser.add_argument("--learning", action="store_true", help="also run the full tiny default both ways")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--learning-modes", default=",".join(MODES), help="comma-separated, of: " + ", ".join(MODES))
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "async_speedup")
    parser.add_argument("--results", type=Path, default=REPO / "benchmarks" / "results" / "async_speedup_cpu")
    args = parser.parse_args()
    speed_figures = None if args.skip_speed else speed(args.out, args.steps, args.seconds_per_token)
    learning_figures = learning(args.out, args.learning_modes.split(",")) if args.learning else None
    text = report(speed_figures, learning_figures)
    args.results.with_suffix(".json").write_text(json.dumps({"speed": speed_figures, "learning": learning_figures},
                                                            indent=1))
    args.results.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
