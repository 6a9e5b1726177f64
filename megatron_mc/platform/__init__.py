"""Where Megatron-Core runs: CUDA when present, otherwise CPU through a compatibility layer.

`activate()` is the only entry point. On a CUDA machine it binds this process to its local GPU and never
imports the CPU layer; on a machine without CUDA it installs `cpu.py`, which maps the CUDA calls that
Megatron-Core hard-codes onto CPU equivalents. Nothing else in the project knows which one ran.
"""
from __future__ import annotations

import os

import torch


def activate() -> torch.device:
    """Prepare this process for Megatron-Core and return the device its tensors live on."""
    if torch.cuda.is_available():
        local_rank = int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count()
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    from megatron_mc.platform import cpu

    cpu.install()
    return torch.device("cpu")


def distributed_backend() -> str:
    return "nccl" if torch.cuda.is_available() else "gloo"
