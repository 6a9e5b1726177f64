"""Running the real `mc-train` on the tiny default, shrunk so a test step takes seconds: 4 prompts x 4
samples per step, two optimizer steps each, and evaluation on 4 held-out problems."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil

from megatron_mc.data.tiny_default import prepare_tiny_default

REPO = Path(__file__).resolve().parents[2]
TINY_CONFIG = REPO / "examples" / "configs" / "tiny_cpu.yaml"
MC_TRAIN = [sys.executable, "-m", "megatron_mc.driver.cli"]
EVAL_PROBLEMS = 4
STEPS = 2
# no dynamic sampling, so each step takes exactly train_batch_size problems and per-step lists compare;
# a checkpoint every step, so a run killed in step 2 resumes from step 1
EXACT = ("rollout.dynamic_sampling=false", "checkpoint.interval=1", "checkpoint.keep_last=3")


def small_eval_problems(folder: Path) -> Path:
    """The first held-out problems of the tiny default: before/after figures without a long evaluation."""
    rows = prepare_tiny_default().held_out_problems.read_text().splitlines()[:EVAL_PROBLEMS]
    path = folder / "held_out_subset.jsonl"
    path.write_text("\n".join(rows) + "\n")
    return path


def small_run_overrides(run_dir: Path, max_steps: int, *extra: str) -> list[str]:
    sets = [f"run_dir={run_dir}", f"train.max_steps={max_steps}", "train.train_batch_size=4",
            "train.mini_batch_size=2", "train.n_samples_per_prompt=4", "train.warmup_steps=0",
            f"eval.problems_file={small_eval_problems(run_dir.parent)}", "eval.n_samples=2", "eval.k=[1]",
            "logging.progress=plain", "logging.tensorboard=false", *extra]
    return [arg for item in sets for arg in ("--set", item)]


def driver_env() -> dict[str, str]:
    return {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(REPO), "RAY_DEDUP_LOGS": "0"}


def run_mc_train(run_dir: Path, max_steps: int, *extra: str, resume: str | None = None,
                 timeout: float = 400) -> subprocess.CompletedProcess:
    args = [*MC_TRAIN, "--config", str(TINY_CONFIG), *small_run_overrides(run_dir, max_steps, *extra)]
    if resume:
        args += ["--resume", resume]
    return subprocess.run(args, cwd=REPO, env=driver_env(), capture_output=True, text=True, timeout=timeout,
                          start_new_session=True)


def metrics_rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]


def problems_per_step(run_dir: Path) -> dict[int, list[str]]:
    return {row["step"]: row["data/problem_ids"] for row in metrics_rows(run_dir) if row["step"] > 0}


def stop_orphaned_servers(run_dir: Path) -> None:
    """Engine servers and routers run in sessions of their own, so a SIGKILLed driver leaves them behind:
    kill the ones this run started, found by the ports their log files (RUN/logs/*_PORT.log) are named after."""
    ports = {int(log.stem.rsplit("_", 1)[1]) for log in (run_dir / "logs").glob("*_*.log")}
    for conn in psutil.net_connections("tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port in ports and conn.pid:
            try:
                psutil.Process(conn.pid).kill()
            except psutil.NoSuchProcess:
                pass
