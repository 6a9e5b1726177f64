"""Process groups: torch.distributed plus Megatron-Core's model-parallel state, from a ParallelConfig."""
from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as dist

from megatron_mc import platform
from megatron_mc.parallel.config import ParallelConfig


def initialize(cfg: ParallelConfig, timeout_minutes: int = 30) -> torch.device:
    """Join the job (env:// from RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT unless already joined), build
    Megatron-Core's groups and seed its RNG tracker. Returns the device this rank's tensors live on."""
    device = platform.activate()
    if not dist.is_initialized():
        dist.init_process_group(
            backend=platform.distributed_backend(),
            rank=int(os.environ.get("RANK", "0")),
            world_size=int(os.environ.get("WORLD_SIZE", "1")),
            timeout=datetime.timedelta(minutes=timeout_minutes),
        )
    cfg.dp(dist.get_world_size())
    from megatron.core import parallel_state, tensor_parallel

    parallel_state.initialize_model_parallel(**cfg.megatron_sizes())
    tensor_parallel.model_parallel_cuda_manual_seed(cfg.seed)
    return device


def destroy(keep_process_group: bool = False) -> None:
    """Tear down Megatron-Core's groups (to re-initialize with another layout) and, unless kept, the job."""
    from megatron.core import parallel_state

    parallel_state.destroy_model_parallel()
    if dist.is_initialized() and not keep_process_group:
        dist.destroy_process_group()
