"""How one Megatron parameter's tensor-parallel shards relate to its HF tensors.

Each layout converts both ways. Towards HF: `hf_shapes` gives the HF tensors' shapes, `place` writes
one TP rank's shard into them (so ranks sharing memory can each write their own part), and `to_hf`
assembles all shards into tensors from `alloc(shape, dtype)`. Towards Megatron: `to_local(hf, rank,
size, dim)` returns one rank's shard. `dim` is the TP partition dimension, None when not sharded.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def empty(shape, dtype) -> torch.Tensor:
    return torch.empty(shape, dtype=dtype)


def _shard(full: torch.Tensor, rank: int, size: int, dim) -> torch.Tensor:
    return full if dim is None or size == 1 else full.chunk(size, dim)[rank]


class Layout:
    def hf_shapes(self, shard_shape, size: int, dim) -> list[tuple]:
        raise NotImplementedError

    def place(self, shard, rank: int, size: int, dim, outputs: list[torch.Tensor]) -> None:
        raise NotImplementedError

    def to_hf(self, shards, dim, alloc=empty) -> list[torch.Tensor]:
        size = len(shards)
        outputs = [alloc(shape, shards[0].dtype) for shape in self.hf_shapes(shards[0].shape, size, dim)]
        for rank, shard in enumerate(shards):
            self.place(shard, rank, size, dim, outputs)
        return outputs


class Same(Layout):
    """The HF tensor is the gathered Megatron tensor."""

    def hf_shapes(self, shard_shape, size, dim):
        shape = list(shard_shape)
        if dim is not None:
            shape[dim] *= size
        return [tuple(shape)]

    def place(self, shard, rank, size, dim, outputs):
        target = outputs[0] if dim is None else outputs[0].narrow(dim, rank * shard.shape[dim], shard.shape[dim])
        target.copy_(shard)

    def to_hf(self, shards, dim, alloc=empty):
        return [shards[0]] if dim is None else super().to_hf(shards, dim, alloc)

    def to_local(self, hf, rank, size, dim):
        return _shard(hf[0], rank, size, dim)


@dataclass(frozen=True)
class Vocab(Layout):
    """Embedding / output rows padded from `vocab` to `padded` (zeros), so every TP shard is equal."""

    vocab: int
    padded: int

    def hf_shapes(self, shard_shape, size, dim):
        return [(self.vocab, *shard_shape[1:])]

    def place(self, shard, rank, size, dim, outputs):
        start = rank * shard.shape[0]
        count = min(shard.shape[0], self.vocab - start)
        if count > 0:
            outputs[0][start : start + count].copy_(shard[:count])

    def to_local(self, hf, rank, size, dim):
        full = F.pad(hf[0], (0, 0, 0, self.padded - self.vocab))
        return _shard(full, rank, size, dim)


@dataclass(frozen=True)
class QKV(Layout):
    """Megatron fuses q, k, v per query group: [group][q heads of the group, k, v][head_dim] rows;
    TP rank r holds groups r*groups/tp .. (r+1)*groups/tp."""

    groups: int
    heads_per_group: int
    head_dim: int

    def hf_shapes(self, shard_shape, size, dim):
        tail = tuple(shard_shape[1:])
        q_rows = self.groups * self.heads_per_group * self.head_dim
        return [(q_rows, *tail), (self.groups * self.head_dim, *tail), (self.groups * self.head_dim, *tail)]

    def place(self, shard, rank, size, dim, outputs):
        tail, heads, per_rank = shard.shape[1:], self.heads_per_group, self.groups // size
        grouped = shard.view(per_rank, heads + 2, self.head_dim, *tail)
        mine = slice(rank * per_rank, (rank + 1) * per_rank)
        q, k, v = (out.view(self.groups, -1, self.head_dim, *tail) for out in outputs)
        q[mine].copy_(grouped[:, :heads])
        k[mine].copy_(grouped[:, heads : heads + 1])
        v[mine].copy_(grouped[:, heads + 1 :])

    def to_local(self, hf, rank, size, dim):
        q, k, v = hf
        tail = q.shape[1:]
        q = q.reshape(self.groups, self.heads_per_group, self.head_dim, *tail)
        k = k.reshape(self.groups, 1, self.head_dim, *tail)
        v = v.reshape(self.groups, 1, self.head_dim, *tail)
        full = torch.cat([q, k, v], dim=1).reshape(-1, *tail)
        return _shard(full, rank, size, dim)


class GateUp(Layout):
    """Megatron's fc1 holds [gate; up] per TP shard, so the halves are split per shard."""

    def hf_shapes(self, shard_shape, size, dim):
        shape = (shard_shape[0] // 2 * size, *shard_shape[1:])
        return [shape, shape]

    def place(self, shard, rank, size, dim, outputs):
        half = shard.shape[0] // 2
        for out, part in zip(outputs, (shard[:half], shard[half:])):
            out[rank * half : (rank + 1) * half].copy_(part)

    def to_local(self, hf, rank, size, dim):
        gate, up = (_shard(t, rank, size, 0 if dim is not None else None) for t in hf)
        return torch.cat([gate, up])
