"""The driver's evaluation hook: the held-out problems through the run's own engines and judge pool."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from megatron_mc.eval.evaluate import eval_metrics, eval_rollout_config, evaluate
from megatron_mc.run_state import write_atomic

EVAL_DIR = "eval"


async def evaluate_policy(session, step: int) -> dict[str, float]:
    """Evaluate the engines' current weights; the full report goes to RUN/eval/step_N.json."""
    cfg = session.cfg
    rollout = eval_rollout_config(cfg.rollout, cfg.eval.n_samples, cfg.eval.temperature)
    report: dict[str, Any] = await evaluate(session.eval_problems, session.client, session.prompts, session.pool,
                                            rollout, cfg.eval.k, cfg.eval.date_from, cfg.eval.date_to,
                                            cfg.judge.stop_at_first_failure)
    report["step"] = step
    write_atomic(Path(cfg.run_dir) / EVAL_DIR / f"step_{step:06d}.json", json.dumps(report, indent=1))
    return eval_metrics(report)


def headline(metrics: dict[str, float]) -> str:
    return ", ".join(f"{name.removeprefix('eval/')} {100 * value:.1f}%" for name, value in metrics.items()
                     if name.count("/") == 1 and name.startswith("eval/pass@"))
