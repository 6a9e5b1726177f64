"""The trainer's Megatron distributed checkpoint: model, optimizer, LR scheduler and every rank's RNG
states, in one dist_checkpointing save (STEP_DIR/model/, as megatron_mc.run_state lays it out).

The model part reshards like megatron_mc.checkpoint.dist; the distributed optimizer's state reshards across
data-parallel sizes (format data_parallel, Megatron-LM's default) or across any layout (format full), as
CheckpointConfig.optimizer_resharding chooses. The RNG states are one object per rank, restored under the
same world size only.
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from megatron_mc.checkpoint.dist import HF_CONFIG, write_results_in_this_process
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


# CheckpointConfig.optimizer_resharding -> Megatron-Core's name for the distributed optimizer's format
OPTIMIZER_FORMATS = {"data_parallel": "dp_reshardable", "full": "fully_reshardable"}


def _megatron_optimizers(optimizer) -> list:
    """The optimizers inside Megatron's ChainedOptimizer (or the one given)."""
    return getattr(optimizer, "chained_optimizers", [optimizer])


def _uses_torch_adam(inner) -> bool:
    """TE's and Apex's fused Adam keep the step per parameter group and need none of the repairs below."""
    return isinstance(inner.optimizer, (torch.optim.Adam, torch.optim.AdamW))


def _torch_optimizers(optimizer) -> list:
    return [inner.optimizer for inner in _megatron_optimizers(optimizer) if _uses_torch_adam(inner)]


def _adam_steps(optimizer) -> int:
    """Adam's step count: per parameter in torch's Adam, per parameter group in TE's and Apex's fused Adam."""
    for torch_optimizer in _torch_optimizers(optimizer):
        for param_state in torch_optimizer.state.values():
            if "step" in param_state:
                return int(param_state["step"])
    for inner in _megatron_optimizers(optimizer):
        for group in getattr(inner.optimizer, "param_groups", []):
            if group.get("params") and "step" in group:
                return int(group["step"])
    return 0


def _set_adam_steps(optimizer, steps: int) -> None:
    """Megatron-Core's distributed optimizer, without TE or Apex, restores Adam's step as one tensor shared
    by every parameter (which torch's Adam then advances once per parameter) and not at its saved value;
    each parameter gets its own step, as torch keeps it."""
    for torch_optimizer in _torch_optimizers(optimizer):
        for param_state in torch_optimizer.state.values():
            param_state["step"] = torch.tensor(float(steps))


def _materialize_optimizer_state(optimizer) -> None:
    """Give a fresh optimizer the state of zero steps. torch's Adam creates its state at the first step,
    but Megatron-Core's distributed optimizer without TE or Apex reads every parameter's 'step' while it
    builds the state dict it loads into."""
    for torch_optimizer in _torch_optimizers(optimizer):
        if torch_optimizer.state:
            continue
        for group in torch_optimizer.param_groups:
            for param in group["params"]:
                torch_optimizer.state[param] = {"step": torch.tensor(0.0), "exp_avg": torch.zeros_like(param),
                                                "exp_avg_sq": torch.zeros_like(param)}


def _full_state(chunks, optimizer, scheduler, loading: bool, metadata: dict, with_rng: bool = True) -> dict:
    model = _model_state(chunks)
    state = {**model, "optimizer": optimizer.sharded_state_dict(model, is_loading=loading, metadata=metadata),
             "adam_steps": 0 if loading else _adam_steps(optimizer), "lr_scheduler": scheduler.state_dict()}
    if with_rng:
        state["rng_state"] = _sharded_rng(None if loading else _rng_state())
    return state


@contextlib.contextmanager
def _adam_step_kept_aside(optimizer) -> Iterator[None]:
    """Megatron-Core 0.16's fully_reshardable load copies every key of torch Adam's per-parameter state from
    the checkpoint, which has no 'step' (it is restored separately): the step is set aside meanwhile."""
    originals = []
    for inner in _megatron_optimizers(optimizer):
        if not (hasattr(inner, "_set_main_param_and_optimizer_states") and _uses_torch_adam(inner)):
            continue  # not a distributed optimizer over torch's Adam
        original = inner._set_main_param_and_optimizer_states

        def without_step(model_param, tensors, inner=inner, original=original):
            group_index, group_order = inner.model_param_group_index_map[model_param]
            main_param = inner.optimizer.param_groups[group_index]["params"][group_order]
            step = inner.optimizer.state[main_param].pop("step", None)
            try:
                original(model_param, tensors)
            finally:
                if step is not None:
                    inner.optimizer.state[main_param]["step"] = step

        inner._set_main_param_and_optimizer_states = without_step
        originals.append(inner)
    try:
        yield
    finally:
        for inner in originals:
            del inner._set_main_param_and_optimizer_states  # back to the class's method


def save_training_checkpoint(step_dir: str, chunks, optimizer, scheduler, hf_config: dict,
                             optimizer_resharding: str = "data_parallel") -> Path:
    """Collective. Writes STEP_DIR/model/ (which must be new or empty)."""
    from megatron.core import dist_checkpointing

    path = Path(step_dir) / MODEL_SUBDIR
    if path.exists() and any(path.iterdir()):
        raise FileExistsError(f"{path}: checkpoint directory is not empty; use a new step directory")
    path.mkdir(parents=True, exist_ok=True)
    dist.barrier()
    metadata = {"distrib_optim_sharding_type": OPTIMIZER_FORMATS[optimizer_resharding],
                "world_size": dist.get_world_size()}
    write_results_in_this_process()
    dist_checkpointing.save(_full_state(chunks, optimizer, scheduler, loading=False, metadata=metadata), str(path),
                            content_metadata=metadata)
    if dist.get_rank() == 0:
        tmp = path / (HF_CONFIG + ".tmp")
        tmp.write_text(json.dumps(hf_config, indent=2))
        os.replace(tmp, path / HF_CONFIG)
    dist.barrier()
    return path


def load_training_checkpoint(step_dir: str, chunks, optimizer, scheduler) -> None:
    """Collective. Restores model, optimizer, LR scheduler and RNG from STEP_DIR/model/, the optimizer in the
    format it was saved in. The RNG states are one per rank: under another world size they stay as seeded."""
    from megatron.core import dist_checkpointing

    path = Path(step_dir) / MODEL_SUBDIR
    if not dist_checkpointing.check_is_distributed_checkpoint(str(path)):
        raise FileNotFoundError(f"{path}: not a Megatron distributed checkpoint (no metadata.json); pass the "
                                "step directory that save_checkpoint wrote")
    metadata = dist_checkpointing.load_content_metadata(str(path)) or {}
    same_world = metadata.get("world_size", dist.get_world_size()) == dist.get_world_size()
    if not same_world and dist.get_rank() == 0:
        print(f"{path}: saved by {metadata['world_size']} ranks, loaded by {dist.get_world_size()}; the RNG "
              "states stay as seeded", file=sys.stderr, flush=True)
    _materialize_optimizer_state(optimizer)
    state = dist_checkpointing.load(_full_state(chunks, optimizer, scheduler, loading=True, metadata=metadata,
                                                with_rng=same_world), str(path))
    keys = [k for k in state if k.startswith("model")]
    for key, chunk in zip(sorted(keys), chunks):
        unwrap(chunk).load_state_dict(state[key], strict=True)
    with torch.no_grad(), _adam_step_kept_aside(optimizer):
        # in fp32 the distributed optimizer's main params are views of the model's leaves
        optimizer.load_state_dict(state["optimizer"])
    if state.get("adam_steps"):  # absent from checkpoints written before it was recorded
        _set_adam_steps(optimizer, state["adam_steps"])
    scheduler.load_state_dict(state["lr_scheduler"])
    if same_world:
        _set_rng_state(state["rng_state"])
