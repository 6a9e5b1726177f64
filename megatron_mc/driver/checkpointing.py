"""Writing a step's checkpoint (Megatron distributed checkpoint + run state, COMPLETE last) and HF exports."""
from __future__ import annotations

import shutil
from pathlib import Path

from megatron_mc.config import RunConfig
from megatron_mc.run_state import (RunState, begin_checkpoint, finish_checkpoint, hf_export_dir,
                                   is_complete, mark_complete, step_dir)


def due(step: int, interval: int, last_step: int) -> bool:
    """Every `interval` steps and at the last one; interval 0 means only at the last one."""
    return step == last_step or (interval > 0 and step % interval == 0)


def save_checkpoint(cfg: RunConfig, group, state: RunState) -> Path:
    """Model, optimizer and RNG through the TrainGroup, then the run state; a complete one is not rewritten."""
    folder = step_dir(cfg.checkpoint_dir, state.step)
    if is_complete(folder):
        return folder
    folder = begin_checkpoint(cfg.checkpoint_dir, state.step)
    group.save_checkpoint(str(folder))  # the trainer writes folder/model/
    finish_checkpoint(folder, state, cfg.checkpoint.keep_last)
    return folder


def export_hf(cfg: RunConfig, group, step: int, hf_config_dir: Path) -> Path:
    """RUN/hf/step_N/: an HF checkpoint (config and tokenizer from the starting model), marked complete."""
    out = hf_export_dir(cfg.run_dir, step)
    if is_complete(out):
        return out
    shutil.rmtree(out, ignore_errors=True)
    group.export_hf(str(out), str(hf_config_dir))
    mark_complete(out, str(step))
    return out
