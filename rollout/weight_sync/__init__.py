"""Weight transports from the trainer into the engines, chosen by name (RolloutConfig.weight_sync).

Each consumes an iterable of buckets, `list[(hf_name, tensor)]`, in the HF checkpoint's naming and layout,
and sets the engines' weight version, which every later Sample carries.
"""
from __future__ import annotations

from rollout.weight_sync.base import Bucket, WeightSync
from rollout.weight_sync.disk import DiskWeightSync
from rollout.weight_sync.distributed import DistributedWeightSync
from rollout.weight_sync.tensor import TensorWeightSync

WEIGHT_SYNCS: dict[str, type[WeightSync]] = {
    "tensor": TensorWeightSync,
    "distributed": DistributedWeightSync,
    "disk": DiskWeightSync,
}


def make_weight_sync(kind: str, engine_urls: list[str], **options) -> WeightSync:
    if kind not in WEIGHT_SYNCS:
        raise ValueError(f"rollout.weight_sync must be one of {sorted(WEIGHT_SYNCS)}, got {kind!r}")
    return WEIGHT_SYNCS[kind](engine_urls, **options)


__all__ = ["Bucket", "WeightSync", "WEIGHT_SYNCS", "make_weight_sync",
           "DiskWeightSync", "DistributedWeightSync", "TensorWeightSync"]
