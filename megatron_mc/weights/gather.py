"""Memory for assembling HF tensors from TP shards, and the gather that fills it.

Where every rank of a gloo group runs on this host, the group shares one /dev/shm arena: each rank
writes only its own shard into the HF-layout tensors there and, after a barrier, all ranks see them
whole (gloo over loopback TCP moves ~0.35 GB/s; this moves at memory speed and copies each byte once).
Elsewhere (NCCL, several hosts) the group's collective all-gathers the shards into a local arena.
"""
from __future__ import annotations

import os
import socket
import uuid
from typing import Optional

import torch
import torch.distributed as dist

ALIGN = 64


def all_gather(tensor: torch.Tensor, group) -> list[torch.Tensor]:
    tensor = tensor.detach().contiguous()
    out = [torch.empty_like(tensor) for _ in range(dist.get_world_size(group))]
    dist.all_gather(out, tensor, group=group)
    return out


_ON_ONE_HOST: dict = {}


def shares_host_memory(group) -> bool:
    """True when `group` is gloo with all ranks on this host (decided once; collective the first time)."""
    if group not in _ON_ONE_HOST:
        same = False
        if dist.get_backend(group) == "gloo" and os.path.isdir("/dev/shm"):
            hosts = [None] * dist.get_world_size(group)
            dist.all_gather_object(hosts, socket.gethostname(), group=group)
            same = len(set(hosts)) == 1
        _ON_ONE_HOST[group] = same
    return _ON_ONE_HOST[group]


class Arena:
    """A bump allocator over one buffer kept between exports (weight sync runs every step, and fresh
    memory costs a page fault per page each time). With `group`, the buffer is a /dev/shm mapping shared
    by the group's ranks, who allocate in the same order and so agree on every offset."""

    def __init__(self, group=None):
        self.group = group
        self.buffer: Optional[torch.Tensor] = None
        self.offset = 0

    def reserve(self, nbytes: int, device) -> bool:
        """Room for `nbytes` more? Grows only when empty; False means: flush the bucket first."""
        if self.buffer is not None and self.offset + nbytes <= self.buffer.numel():
            return True
        if self.offset:
            return False
        if self.buffer is None or self.buffer.numel() < nbytes or self.buffer.device != device:
            self.buffer = self._shared(nbytes) if self.group is not None else torch.empty(
                nbytes, dtype=torch.uint8, device=device)
        return True

    def alloc(self, shape, dtype) -> torch.Tensor:
        count = 1
        for n in shape:
            count *= n
        nbytes = count * torch.empty((), dtype=dtype).element_size()
        view = self.buffer[self.offset : self.offset + nbytes].view(dtype).view(*shape)
        self.offset += -(-nbytes // ALIGN) * ALIGN
        return view

    def _shared(self, nbytes: int) -> torch.Tensor:
        """Rank 0 of the group creates the mapping, all map it, and it is unlinked at once: nothing is
        left in /dev/shm even when a rank dies."""
        token = [uuid.uuid4().hex if dist.get_rank(self.group) == 0 else None]
        dist.broadcast_object_list(token, src=dist.get_global_rank(self.group, 0), group=self.group)
        path = f"/dev/shm/megatron_mc-export-{token[0]}"
        if dist.get_rank(self.group) == 0:
            buffer = torch.from_file(path, shared=True, size=nbytes, dtype=torch.uint8)
        dist.barrier(group=self.group)
        if dist.get_rank(self.group) != 0:
            buffer = torch.from_file(path, shared=True, size=nbytes, dtype=torch.uint8)
        dist.barrier(group=self.group)
        if dist.get_rank(self.group) == 0:
            os.unlink(path)
        return buffer
