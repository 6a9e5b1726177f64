"""Write the model as an HF safetensors checkpoint: shards plus model.safetensors.index.json."""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import save_file
from tqdm import tqdm

from megatron_mc.models.adapter import ModelAdapter
from megatron_mc.weights.buckets import iter_hf_buckets

INDEX = "model.safetensors.index.json"


def _is_writer() -> bool:
    """One rank per pipeline stage writes: the first of its tensor, context and data parallel groups
    (every rank still takes part in the gathers)."""
    if not dist.is_initialized():
        return True
    from megatron.core import parallel_state as ps

    return ps.get_tensor_model_parallel_rank() == 0 and ps.get_data_parallel_rank(with_context_parallel=True) == 0


def save_hf_weights(model_chunks: list[torch.nn.Module], adapter: ModelAdapter, out_dir: str,
                    shard_bytes: int = 4 << 30, progress: bool = False) -> list[str]:
    """Collective. Returns the shard file names (same list on every rank)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stage = _pipeline_rank()
    writer = _is_writer()
    written = []
    buckets = iter_hf_buckets(model_chunks, adapter, shard_bytes)
    for k, bucket in enumerate(tqdm(buckets, desc=f"export stage {stage}", disable=not (progress and writer))):
        if not writer:
            continue
        part = f"part-{stage:03d}-{k:05d}.safetensors"
        tensors = {name: t.detach().clone().contiguous() for name, t in bucket}
        save_file(tensors, str(out / (part + ".tmp")), metadata={"format": "pt"})
        os.replace(out / (part + ".tmp"), out / part)
        written.append((part, {n: t.numel() * t.element_size() for n, t in tensors.items()}))
    everyone = [written]
    if dist.is_initialized():
        everyone = [None] * dist.get_world_size()
        dist.all_gather_object(everyone, written)
    parts = sorted(dict(p for rank_parts in everyone for p in rank_parts).items())
    names = [f"model-{i + 1:05d}-of-{len(parts):05d}.safetensors" for i in range(len(parts))]
    if not dist.is_initialized() or dist.get_rank() == 0:
        _finish(out, parts, names)
    if dist.is_initialized():
        dist.barrier()
    return names


def _pipeline_rank() -> int:
    if not dist.is_initialized():
        return 0
    from megatron.core import parallel_state as ps

    return ps.get_pipeline_model_parallel_rank()


def _finish(out: Path, parts, names) -> None:
    weight_map, total = {}, 0
    for (part, sizes), name in zip(parts, names):
        os.replace(out / part, out / name)
        weight_map.update({tensor: name for tensor in sizes})
        total += sum(sizes.values())
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    tmp = out / (INDEX + ".tmp")
    tmp.write_text(json.dumps(index, indent=2))
    os.replace(tmp, out / INDEX)
