"""The reference policy of the KL term: the weights the run started from.

Only one model lives in device memory. The reference weights (this rank's shards) are kept in host
memory and copied into the live parameters only while reference log-probs are computed; the policy's
own weights wait in host memory meanwhile and are copied back bit for bit. This is slime's approach,
and it costs two host copies of a rank's shard instead of a second model on the GPU.

The snapshot is taken when the trainer starts, from the model it loaded (the HF start checkpoint), before
any training checkpoint is restored, so a resumed run keeps the same reference.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


def _host_copy(tensor: torch.Tensor) -> torch.Tensor:
    copy = torch.empty(tensor.shape, dtype=tensor.dtype, device="cpu",
                       pin_memory=tensor.is_cuda)  # pinned: the copies back and forth run at full bus speed
    copy.copy_(tensor.detach())
    return copy


class ReferenceWeights:
    def __init__(self, model_chunks: list[torch.nn.Module]):
        self._params = [p for chunk in model_chunks for p in chunk.parameters()]
        self._reference = [_host_copy(p) for p in self._params]
        self._policy = [torch.empty_like(r, pin_memory=r.is_pinned()) for r in self._reference]

    @property
    def nbytes(self) -> int:
        return sum(r.numel() * r.element_size() for r in self._reference)

    @contextlib.contextmanager
    def swapped_in(self) -> Iterator[None]:
        """The model computes with the reference weights inside the block and with its own after it."""
        with torch.no_grad():
            for param, saved in zip(self._params, self._policy):
                saved.copy_(param)
            for param, reference in zip(self._params, self._reference):
                param.copy_(reference, non_blocking=True)
            try:
                yield
            finally:
                for param, saved in zip(self._params, self._policy):
                    param.copy_(saved, non_blocking=True)
                if self._params and self._params[0].is_cuda:
                    torch.cuda.synchronize()  # the host buffers are reused by the next swap
