"""Payloads for SGLang's /update_weights_from_tensor: tensors in SGLang's own serialization
(MultiprocessingSerializer), which carries CUDA tensors as IPC handles.

Three rules make a handle that an engine's TP rank can open and read safely:
- Device. torch writes the sender's CUDA device index into a handle. Under Ray's narrowed CUDA_VISIBLE_DEVICES
  that index is not the physical GPU (a train actor on GPU 3 sees it as cuda:0, and an engine that sees the
  node's GPUs would open its own cuda:0). SGLang's monkey_patch_torch_reductions (sglang/srt/utils/
  patch_torch.py) writes the GPU's UUID instead and maps it back on the engine; the sender must apply it too.
- Rank. Engine TP rank j deserializes entry j of serialized_named_tensors (tp_worker.deserialize_own_rank);
  entry j must be made on TP rank j's GPU, by the train rank colocated there
  (megatron_mc/trainer/engine_sync.py gathers them).
- Lifetime. SGLang answers once every TP rank has enqueued its copies, not once they ran, so the memory behind
  a handle must not be rewritten after the answer either. A payload is made from a fresh copy of the bucket:
  torch's CUDA IPC refcount keeps that memory from reuse until the engine releases it (after synchronizing
  its stream), whereas megatron_mc.weights.iter_hf_buckets rewrites its own buffer for the next bucket. The
  copy is made on the current stream; torch records an IPC event there that the engine waits on, so no
  device synchronization is needed before sending.
On CPU (the rehearsal) the same serializer carries shared-memory tensors; "file_system" sharing names them in
/dev/shm, so an unrelated engine process can open them (descriptor passing needs a common parent).
"""
from __future__ import annotations

import torch

from rollout.weight_sync.base import Bucket


def visible_gpu(local_index: int, visible_devices: str | None) -> str | None:
    """The GPU (as CUDA_VISIBLE_DEVICES names it: an index or a UUID) behind CUDA device `local_index` of a
    process started with `visible_devices`; None when the process sees no GPU."""
    if visible_devices is None:
        return str(local_index)
    devices = [d.strip() for d in visible_devices.split(",") if d.strip()]
    if not devices:
        return None
    if local_index >= len(devices):
        raise ValueError(f"CUDA device {local_index} does not exist under CUDA_VISIBLE_DEVICES={visible_devices!r}")
    return devices[local_index]


def sglang_payload(bucket: Bucket) -> tuple[str, Bucket]:
    """(serialized_named_tensors entry, the tensors it refers to): keep the tensors until the engine answered."""
    from sglang.srt.utils import MultiprocessingSerializer

    copies = [(name, tensor.detach().clone()) for name, tensor in bucket]
    if any(tensor.is_cuda for _, tensor in copies):
        from sglang.srt.utils.patch_torch import monkey_patch_torch_reductions

        monkey_patch_torch_reductions()  # idempotent; it breaks the pickling of CPU tensors, so CUDA only
    else:
        torch.multiprocessing.set_sharing_strategy("file_system")
    return MultiprocessingSerializer.serialize(copies, output_str=True), copies
