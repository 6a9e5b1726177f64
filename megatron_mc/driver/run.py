"""One `mc-train` run: choose the checkpoint to resume, open the session, restore, loop, summarize."""
from __future__ import annotations

import asyncio
from pathlib import Path

from megatron_mc.config import RunConfig, write_resolved_config
from megatron_mc.data.sampler import ProblemSampler
from megatron_mc.driver.loop import RLLoop
from megatron_mc.driver.problems import ProblemStream
from megatron_mc.driver.resume import checkpoint_to_resume, restore
from megatron_mc.driver.session import open_session
from megatron_mc.driver.signals import StopRequest
from megatron_mc.driver.temperature import make_temperature_source
from megatron_mc.metrics.logger import MetricsLogger
from megatron_mc.planning.cluster_layout import check_cluster_layout
from megatron_mc.run_state import RunState
from megatron_mc.typed_config import to_dict

HEADLINE_METRIC = "eval/pass@1"
STOPPED_EXIT_CODE = 143  # 128 + SIGTERM: stopped early on request, after a checkpoint


def summarize(history: list[dict]) -> str | None:
    """'held-out pass@1: A% before training -> B% after step N' from the logged rows."""
    evaluated = [row for row in history if HEADLINE_METRIC in row]
    if not evaluated:
        return None
    first, last = evaluated[0], evaluated[-1]
    before = f"{100 * first[HEADLINE_METRIC]:.1f}% " + ("before training" if first["step"] == 0
                                                        else f"at step {first['step']}")
    return f"held-out pass@1: {before} -> {100 * last[HEADLINE_METRIC]:.1f}% after step {last['step']}"


async def _run_loop(loop: RLLoop, start_step: int) -> int:
    try:
        return await loop.run(start_step)
    finally:
        await loop.session.client.close()


def train(cfg: RunConfig, resume: str | None) -> int:
    """Returns the process exit code: 0 when train.max_steps is reached, 143 when stopped by SIGTERM."""
    check_cluster_layout(cfg)  # before anything starts: layouts a cluster cannot run fail fast
    folder: Path | None = checkpoint_to_resume(cfg, resume)  # so does a bad --resume
    write_resolved_config(cfg)
    with StopRequest() as stop, open_session(cfg) as session:
        sampler = ProblemSampler(len(session.train_problems), cfg.train.seed)
        temperature = make_temperature_source(cfg, session.train_problems)
        state = restore(folder, session.group, sampler, temperature) if folder else RunState(step=0)
        with MetricsLogger(cfg.run_dir, cfg.logging, cfg.train.max_steps, config=to_dict(cfg),
                           resume_step=state.step if folder else None) as logger:
            if folder:
                logger.message(f"resumed from {folder} (step {state.step})")
            loop = RLLoop(session, logger, ProblemStream(session.train_problems, sampler), temperature,
                          list(state.metrics_history), stop)
            last = asyncio.run(_run_loop(loop, state.step))
            summary = summarize(loop.history)
            if summary:
                logger.message(summary)
    return STOPPED_EXIT_CODE if last < cfg.train.max_steps else 0
