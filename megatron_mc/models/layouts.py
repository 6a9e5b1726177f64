"""How one Megatron parameter's tensor-parallel shards relate to its HF tensors.

Each layout converts both ways: `to_hf(shards, dim)` takes the shards of every TP rank in rank order
(a single-element list when the parameter is not TP-sharded, `dim` None) and returns the HF tensors;
`to_local(hf, rank, size, dim)` returns this rank's shard built from the HF tensors.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def _full(shards: list[torch.Tensor], dim) -> torch.Tensor:
    return shards[0] if dim is None or len(shards) == 1 else torch.cat(shards, dim)


def _shard(full: torch.Tensor, rank: int, size: int, dim) -> torch.Tensor:
    return full if dim is None or size == 1 else full.chunk(size, dim)[rank]


class Same:
    """The HF tensor is the gathered Megatron tensor."""

    def to_hf(self, shards, dim):
        return [_full(shards, dim)]

    def to_local(self, hf, rank, size, dim):
        return _shard(hf[0], rank, size, dim)


@dataclass(frozen=True)
class Vocab:
    """Embedding / output rows padded from `vocab` to `padded` (zeros), so every TP shard is equal."""

    vocab: int
    padded: int

    def to_hf(self, shards, dim):
        return [_full(shards, dim)[: self.vocab]]

    def to_local(self, hf, rank, size, dim):
        full = F.pad(hf[0], (0, 0, 0, self.padded - self.vocab))
        return _shard(full, rank, size, dim)


@dataclass(frozen=True)
class QKV:
    """Megatron fuses q, k, v per query group: [group][q heads of the group, k, v][head_dim] rows."""

    groups: int
    heads_per_group: int
    head_dim: int

    def to_hf(self, shards, dim):
        full = _full(shards, dim)
        tail = full.shape[1:]
        grouped = full.reshape(self.groups, self.heads_per_group + 2, self.head_dim, *tail)
        q = grouped[:, : self.heads_per_group].reshape(-1, *tail)
        k = grouped[:, self.heads_per_group].reshape(-1, *tail)
        v = grouped[:, self.heads_per_group + 1].reshape(-1, *tail)
        return [q, k, v]

    def to_local(self, hf, rank, size, dim):
        q, k, v = hf
        tail = q.shape[1:]
        q = q.reshape(self.groups, self.heads_per_group, self.head_dim, *tail)
        k = k.reshape(self.groups, 1, self.head_dim, *tail)
        v = v.reshape(self.groups, 1, self.head_dim, *tail)
        full = torch.cat([q, k, v], dim=1).reshape(-1, *tail)
        return _shard(full, rank, size, dim)


class GateUp:
    """Megatron's fc1 holds [gate; up] per TP shard, so the split happens before the gather."""

    def to_hf(self, shards, dim):
        halves = [s.chunk(2, dim=0) for s in shards]
        return [torch.cat([h[0] for h in halves]), torch.cat([h[1] for h in halves])]

    def to_local(self, hf, rank, size, dim):
        gate, up = (_shard(t, rank, size, 0 if dim is not None else None) for t in hf)
        return torch.cat([gate, up])
