"""The policy's weights as HF-named, HF-layout tensors in buckets: the one mapping used by checkpoint
export, the conversion tools and weight sync to the rollout engines."""
from __future__ import annotations

from typing import Iterator, Optional

import torch
import torch.distributed as dist

from megatron_mc.models.adapter import ModelAdapter
from megatron_mc.weights.gather import ALIGN, Arena, shares_host_memory
from megatron_mc.weights.params import LocalParam, gathered, local_params

_LOCAL = Arena()
_SHARED: dict = {}


def _shared_arena(param: LocalParam) -> Optional[Arena]:
    """The group-shared arena a dense TP-sharded parameter is assembled in, if its group shares memory.
    Experts take the gather path (their EP gather interleaves with the TP one)."""
    group = param.tp_group
    if param.local_expert is not None or group is None or dist.get_world_size(group) == 1:
        return None
    if not shares_host_memory(group):
        return None
    if group not in _SHARED:
        _SHARED[group] = Arena(group)
    return _SHARED[group]


def _bytes(shapes, dtype) -> int:
    item = torch.empty((), dtype=dtype).element_size()
    total = 0
    for shape in shapes:
        count = 1
        for n in shape:
            count *= n
        total += -(-count * item // ALIGN) * ALIGN
    return total


def iter_hf_buckets(model_chunks: list[torch.nn.Module], adapter: ModelAdapter,
                    bucket_bytes: int) -> Iterator[list[tuple[str, torch.Tensor]]]:
    """Every HF tensor held by this rank's pipeline stage (TP shards gathered, all experts of its layers
    gathered across EP, vocabulary padding removed), in lists of about `bucket_bytes`.

    Collective over the TP and EP groups: all their ranks iterate to the end and get the same tensors.
    The tensors are views of the parameters or of buffers reused by every export (each the larger of
    bucket_bytes and the largest HF tensor): use (send, copy, write) a bucket before asking for the
    next, and before the next optimizer step."""
    bucket, size, shared_groups = [], 0, set()

    def flush():
        for group in shared_groups:  # every rank has written its shards: the tensors are whole
            dist.barrier(group=group)
        yield bucket
        for group in shared_groups:  # every rank is done with them: the memory may be rewritten
            dist.barrier(group=group)
        for arena in (_LOCAL, *_SHARED.values()):
            arena.offset = 0

    for param in local_params(model_chunks, adapter.num_experts):
        arena = _shared_arena(param)
        if arena is not None:
            rule, hf_names = adapter.rule_for(param.name)
            if not rule.exported:
                continue
            group, shard = param.tp_group, param.tensor.detach()
            shapes = rule.layout.hf_shapes(shard.shape, dist.get_world_size(group), param.tp_dim)
            need = _bytes(shapes, shard.dtype)
            if bucket and (size >= bucket_bytes or not arena.reserve(need, shard.device)):
                yield from flush()
                bucket, size, shared_groups = [], 0, set()
            arena.reserve(max(need, bucket_bytes), shard.device)
            outputs = [arena.alloc(shape, shard.dtype) for shape in shapes]
            rule.layout.place(shard, dist.get_rank(group), dist.get_world_size(group), param.tp_dim, outputs)
            shared_groups.add(group)
            bucket += zip(hf_names, outputs)
            size += need
            continue
        for name, shards in gathered(param, adapter.num_experts):
            rule, hf_names = adapter.rule_for(name)
            if not rule.exported:
                continue
            need = _bytes(rule.layout.hf_shapes(shards[0].shape, len(shards), param.tp_dim), shards[0].dtype)
            if bucket and (size >= bucket_bytes or not _LOCAL.reserve(need, shards[0].device)):
                yield from flush()
                bucket, size, shared_groups = [], 0, set()
            _LOCAL.reserve(max(need, bucket_bytes), shards[0].device)
            outputs = rule.layout.to_hf(shards, param.tp_dim, _LOCAL.alloc)
            bucket += zip(hf_names, outputs)
            size += sum(t.numel() * t.element_size() for t in outputs)
    if bucket:
        yield from flush()
