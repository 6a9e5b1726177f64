"""A process group beside the default one, joined by the trainer's source rank and every engine rank.

Built the way SGLang builds its weight-update group (rendezvous over tcp://, a PrefixStore named after the
group, torch's _new_process_group_helper), so a trainer using this class and an SGLang engine meet in the
same group; the embedded engine uses it too, over gloo.
"""
from __future__ import annotations

from datetime import timedelta

import torch
import torch.distributed as dist
from torch.distributed.distributed_c10d import Backend, PrefixStore, _new_process_group_helper, _world, rendezvous



def group_name_for(master_address: str, master_port: int) -> str:
    """One name per rendezvous: torch refuses a second group of the same name in one process (a trainer
    that re-forms its group, or two groups in one test process)."""
    return f"weight_update_group_{master_address}_{master_port}"


class StandaloneGroup:
    def __init__(self, backend: str, master_address: str, master_port: int, rank: int, world_size: int,
                 group_name: str | None = None, timeout_s: float = 300.0):
        group_name = group_name or group_name_for(master_address, master_port)
        timeout = timedelta(seconds=timeout_s)
        store, rank, world_size = next(rendezvous(f"tcp://{master_address}:{master_port}", rank, world_size,
                                                  timeout=timeout))
        store.set_timeout(timeout)
        self.group, _ = _new_process_group_helper(world_size, rank, [], Backend(backend),
                                                  PrefixStore(group_name, store), group_name=group_name,
                                                  timeout=timeout)
        # Collectives look a group's ranks up here; new_group() would also need a default group, which an
        # engine process does not have.
        _world.pg_group_ranks[self.group] = {i: i for i in range(world_size)}
        self.rank, self.world_size = rank, world_size
        self.device = torch.device("cuda" if backend == "nccl" else "cpu")

    def send(self, tensors: list[torch.Tensor]) -> None:
        """Broadcast from rank 0 (the trainer)."""
        for tensor in tensors:
            dist.broadcast(tensor.detach().contiguous().to(self.device), src=0, group=self.group)

    def receive(self, names: list[str], dtypes: list[str], shapes: list[list[int]]) -> list[tuple[str, torch.Tensor]]:
        out = []
        for name, dtype, shape in zip(names, dtypes, shapes):
            tensor = torch.empty(shape, dtype=getattr(torch, dtype), device=self.device)
            dist.broadcast(tensor, src=0, group=self.group)
            out.append((name, tensor))
        return out

    def destroy(self) -> None:
        dist.destroy_process_group(self.group)
