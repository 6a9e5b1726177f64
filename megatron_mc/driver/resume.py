"""`--resume auto|PATH`: which checkpoint a run continues from, and restoring everything it holds.

A run's position is the trainer's state (model, optimizer, RNG), the sampler's (epoch, position), the
temperature source's, and the metrics history; the engines get the restored weights before the first step.
"""
from __future__ import annotations

from pathlib import Path

from megatron_mc.config import RunConfig
from megatron_mc.data.sampler import ProblemSampler
from megatron_mc.run_state import (ResumeError, RunState, complete_checkpoints,
                                   find_resume_checkpoint, load_run_state)


def checkpoint_to_resume(cfg: RunConfig, resume: str | None) -> Path | None:
    """None: a fresh start. Without --resume a run directory that already holds checkpoints is an error,
    so a rerun never trains over (and prunes) another run's checkpoints by accident."""
    if resume is None:
        existing = complete_checkpoints(cfg.checkpoint_dir)
        if existing:
            raise ResumeError(f"{cfg.checkpoint_dir} already holds checkpoints (newest: {existing[-1].name}); "
                              "pass --resume auto to continue that run, or --set run_dir=... for a new one")
        return None
    return find_resume_checkpoint(cfg.run_dir, resume, cfg.checkpoint_dir)


def restore(folder: Path, group, sampler: ProblemSampler, temperature) -> RunState:
    state = load_run_state(folder)
    try:
        sampler.load_state_dict(state.sampler)
        temperature.load_state_dict(state.temperature_controller)
    except (KeyError, ValueError) as e:
        raise ResumeError(f"{folder}: cannot resume this run from it: {e}") from None
    group.load_checkpoint(str(folder))
    return state
