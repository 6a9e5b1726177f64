"""A train rank's device memory handed to colocated engines and taken back: the model's parameters, the
optimizer's state (Adam moments, fp32 main parameters) and the gradient buffers leave the device between
training phases, so the engines' weights and KV cache fit on the same GPU.

It works on storages, not tensors: Megatron-Core's DDP lays parameters and gradients out as views of a
few flat buffers, and the distributed optimizer's fp32 shards are views of those too, so moving
`tensor.data` (as Megatron-Core's optimizer.offload_to_cpu does) would cut a view off its buffer. Each
storage is copied to host memory and resized to zero bytes instead; onload resizes it back and copies the
bytes in, and every view is whole again. Gradient buffers carry nothing across a step (zeroed before
each), so they are freed without a copy and come back zeroed. On CPU the same path runs (a host copy and
a resize), which is how tests check it bit for bit.

The weights may stay while the rest goes (keep_weights): the weight update reads them after the engines
have their own weights back, then a second offload moves them too.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

RESIDENT, WEIGHTS_ONLY, OFFLOADED = "resident", "weights", "offloaded"


@dataclass
class _Held:
    storage: torch.UntypedStorage
    nbytes: int
    host: Optional[torch.Tensor]  # None: freed without a copy, zeroed when it comes back
    away: bool = False


def _bytes_of(storage: torch.UntypedStorage) -> torch.Tensor:
    return torch.empty(0, dtype=torch.uint8, device=storage.device).set_(storage)


class HostOffload:
    def __init__(self, model_chunks: list[torch.nn.Module], optimizer, device: torch.device):
        self.chunks = model_chunks
        self.optimizer = optimizer
        self.device = device
        self._plan: Optional[dict[str, list[_Held]]] = None  # while anything is away
        self._hosts: dict[tuple[str, int], torch.Tensor] = {}  # reused across cycles (pinned on CUDA)

    @property
    def state(self) -> str:
        if self._plan is None:
            return RESIDENT
        return OFFLOADED if all(h.away for h in self._plan["weights"]) else WEIGHTS_ONLY

    def offload(self, keep_weights: bool = False) -> int:
        """Returns the device bytes this call freed."""
        if self._plan is None:
            self._plan = self._storages()
        parts = ("grads", "optimizer") if keep_weights else ("grads", "optimizer", "weights")
        moving = [h for part in parts for h in self._plan[part] if not h.away]
        for held in moving:
            if held.host is not None:
                held.host.copy_(_bytes_of(held.storage), non_blocking=True)
        self._synchronize()  # the copies finish before the device memory goes
        for held in moving:
            held.storage.resize_(0)
            held.away = True
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        return sum(held.nbytes for held in moving)

    def onload(self) -> None:
        if self._plan is None:
            return
        for held in (h for part in self._plan.values() for h in part if h.away):
            held.storage.resize_(held.nbytes)
            if held.host is None:
                _bytes_of(held.storage).zero_()
            else:
                _bytes_of(held.storage).copy_(held.host, non_blocking=True)
        self._synchronize()
        self._plan = None

    def _synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def _storages(self) -> dict[str, list[_Held]]:
        """Every device storage behind the weights, the optimizer and the gradient buffers, each once
        (a storage shared by two parts goes with the one that keeps it longest)."""
        # chunk.module: Megatron's DDP wrapper names its flat gradient buffers `buffers`, hiding Module.buffers()
        weights = [t for chunk in self.chunks for t in (*chunk.module.parameters(), *chunk.module.buffers())]
        optimizer_tensors, main_grads = [], []
        for inner in getattr(self.optimizer, "chained_optimizers", [self.optimizer]):
            torch_optimizer = getattr(inner, "optimizer", None)
            if torch_optimizer is None:
                continue
            for group in torch_optimizer.param_groups:
                optimizer_tensors += group["params"]
                main_grads += [p.grad for p in group["params"] if p.grad is not None]
            optimizer_tensors += [v for state in torch_optimizer.state.values() for v in state.values()
                                  if isinstance(v, torch.Tensor)]
        grads = main_grads + [buffer.grad_data for chunk in self.chunks
                              for buffer in (*chunk.buffers, *chunk.expert_parallel_buffers)
                              if buffer.grad_data is not None]
        seen: set[int] = set()
        plan = {}
        for part, tensors, copied in (("weights", weights, True), ("optimizer", optimizer_tensors, True),
                                      ("grads", grads, False)):
            plan[part] = []
            for tensor in tensors:
                storage = tensor.untyped_storage()
                key = storage.data_ptr()
                if tensor.device.type != self.device.type or storage.nbytes() == 0 or key in seen:
                    continue
                seen.add(key)
                plan[part].append(_Held(storage, storage.nbytes(), self._host(part, len(plan[part]), storage)
                                        if copied else None))
        return plan

    def _host(self, part: str, index: int, storage: torch.UntypedStorage) -> torch.Tensor:
        host = self._hosts.get((part, index))
        if host is None or host.numel() != storage.nbytes():
            host = torch.empty(storage.nbytes(), dtype=torch.uint8, device="cpu",
                               pin_memory=self.device.type == "cuda")
            self._hosts[(part, index)] = host
        return host
