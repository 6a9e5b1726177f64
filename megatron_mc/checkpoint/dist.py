"""Megatron distributed checkpoints of the policy: saved under one TP/PP/EP layout, loadable under
another (dist_checkpointing reshards on load). The HF config.json is kept beside the shards so that a
checkpoint always says which architecture it holds."""
from __future__ import annotations

import json
import os
import queue
from pathlib import Path

import torch
import torch.distributed as dist

from megatron_mc.models.build import unwrap

HF_CONFIG = "hf_config.json"


def _sharded_state_dict(model_chunks: list[torch.nn.Module]) -> dict:
    if len(model_chunks) == 1:
        return {"model": unwrap(model_chunks[0]).sharded_state_dict()}
    return {f"model{i}": unwrap(c).sharded_state_dict() for i, c in enumerate(model_chunks)}


def write_results_in_this_process() -> None:
    """Megatron's checkpoint writer returns each save's write results through a queue it creates on a rank's
    first save as a multiprocessing Manager: a spawned Python process per rank, which costs seconds of the
    first checkpoint and stays alive with the rank. It is needed only when the writing runs in another
    process (async_sharded_save); our saves run synchronously in the rank, so a queue of this process does."""
    from megatron.core.dist_checkpointing.strategies import filesystem_async

    if getattr(filesystem_async, "_results_queue", False) is None:
        filesystem_async._results_queue = queue.Queue()


def save_dist_checkpoint(model_chunks: list[torch.nn.Module], ckpt_dir: str, hf_config: dict) -> None:
    """Collective. `ckpt_dir` must be new or empty."""
    from megatron.core import dist_checkpointing

    path = Path(ckpt_dir)
    if path.exists() and any(path.iterdir()):
        raise FileExistsError(f"{path}: checkpoint directory is not empty; choose a new directory")
    path.mkdir(parents=True, exist_ok=True)
    if dist.is_initialized():
        dist.barrier()
    write_results_in_this_process()
    dist_checkpointing.save(_sharded_state_dict(model_chunks), str(path))
    if not dist.is_initialized() or dist.get_rank() == 0:
        tmp = path / (HF_CONFIG + ".tmp")
        tmp.write_text(json.dumps(hf_config, indent=2))
        os.replace(tmp, path / HF_CONFIG)
    if dist.is_initialized():
        dist.barrier()


def read_hf_config(ckpt_dir: str) -> dict:
    path = Path(ckpt_dir) / HF_CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not a megatron_mc checkpoint (no {HF_CONFIG})")
    return json.loads(path.read_text())


def load_dist_checkpoint(model_chunks: list[torch.nn.Module], ckpt_dir: str) -> None:
    """Collective. Fills the chunks (any parallel layout) from the checkpoint; strict about names."""
    from megatron.core import dist_checkpointing

    if not dist_checkpointing.check_is_distributed_checkpoint(ckpt_dir):
        raise FileNotFoundError(f"{ckpt_dir}: not a Megatron distributed checkpoint (no metadata.json)")
    state = dist_checkpointing.load(_sharded_state_dict(model_chunks), ckpt_dir)
    keys = ["model"] if len(model_chunks) == 1 else [f"model{i}" for i in range(len(model_chunks))]
    for key, chunk in zip(keys, model_chunks):
        unwrap(chunk).load_state_dict(state[key], strict=True)
