"""The trainer's Megatron distributed checkpoint: model, optimizer, LR scheduler and every rank's RNG
states, in one dist_checkpointing save (STEP_DIR/model/, as megatron_mc.run_state lays it out).

Resuming is tested under the layout the checkpoint was saved with. The RNG states are one object per
rank, so they load only under the same world size; the model part reshards like
megatron_mc.checkpoint.dist, the optimizer part through Megatron's own sharded optimizer state.
"""
from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from megatron_mc.checkpoint.dist import HF_CONFIG
from megatron_mc.models.build import unwrap
from megatron_mc.run_state import MODEL_SUBDIR


def _model_state(chunks) -> dict:
    if len(chunks) == 1:
        return {"model": unwrap(chunks[0]).sharded_state_dict()}
    return {f"model{i}": unwrap(c).sharded_state_dict() for i, c in enumerate(chunks)}


def _rng_state() -> dict:
    from megatron.core import tensor_parallel

    return {"random": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state() if torch.cuda.is_available() else None,
            "tracker": tensor_parallel.get_cuda_rng_tracker().get_states()}


def _set_rng_state(state: dict) -> None:
    from megatron.core import tensor_parallel

    random.setstate(state["random"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
    tensor_parallel.get_cuda_rng_tracker().set_states(state["tracker"])


def _sharded_rng(data):
    from megatron.core.dist_checkpointing.mapping import ShardedObject

    return ShardedObject("rng_state", data, (dist.get_world_size(),), (dist.get_rank(),), replica_id=0)


def _full_state(chunks, optimizer, scheduler, loading: bool) -> dict:
    model = _model_state(chunks)
    return {**model, "optimizer": optimizer.sharded_state_dict(model, is_loading=loading),
            "lr_scheduler": scheduler.state_dict(), "rng_state": _sharded_rng(None if loading else _rng_state())}


def save_training_checkpoint(step_dir: str, chunks, optimizer, scheduler, hf_config: dict) -> Path:
    """Collective. Writes STEP_DIR/model/ (which must be new or empty)."""
    from megatron.core import dist_checkpointing

    path = Path(step_dir) / MODEL_SUBDIR
    if path.exists() and any(path.iterdir()):
        raise FileExistsError(f"{path}: checkpoint directory is not empty; use a new step directory")
    path.mkdir(parents=True, exist_ok=True)
    dist.barrier()
    dist_checkpointing.save(_full_state(chunks, optimizer, scheduler, loading=False), str(path))
    if dist.get_rank() == 0:
        tmp = path / (HF_CONFIG + ".tmp")
        tmp.write_text(json.dumps(hf_config, indent=2))
        os.replace(tmp, path / HF_CONFIG)
    dist.barrier()
    return path


def load_training_checkpoint(step_dir: str, chunks, optimizer, scheduler) -> None:
    """Collective. Restores model, optimizer, LR scheduler and RNG from STEP_DIR/model/."""
    from megatron.core import dist_checkpointing

    path = Path(step_dir) / MODEL_SUBDIR
    if not dist_checkpointing.check_is_distributed_checkpoint(str(path)):
        raise FileNotFoundError(f"{path}: not a Megatron distributed checkpoint (no metadata.json); pass the "
                                "step directory that save_checkpoint wrote")
    state = dist_checkpointing.load(_full_state(chunks, optimizer, scheduler, loading=True), str(path))
    keys = [k for k in state if k.startswith("model")]
    for key, chunk in zip(sorted(keys), chunks):
        unwrap(chunk).load_state_dict(state[key], strict=True)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["lr_scheduler"])
    _set_rng_state(state["rng_state"])
