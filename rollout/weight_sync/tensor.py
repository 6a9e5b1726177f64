"""Weights as tensors, colocated: /update_weights_from_tensor, one request per bucket.

With SGLang the tensors travel as CUDA IPC handles (SGLang's MultiprocessingSerializer; one copy of the
list per TP rank), so nothing is copied through the host. The embedded engine takes the in-memory
safetensors form (rollout/tensor_bytes.py) in the same field. The serializer is chosen by engine kind.
"""
from __future__ import annotations

from collections.abc import Iterable

from rollout.tensor_bytes import encode_named_tensors
from rollout.weight_sync.base import Bucket, WeightSync


def sglang_ipc_serializer(bucket: Bucket) -> str:
    from sglang.srt.utils import MultiprocessingSerializer

    return MultiprocessingSerializer.serialize(bucket, output_str=True)


SERIALIZERS = {"sglang": sglang_ipc_serializer, "embedded": encode_named_tensors}


class TensorWeightSync(WeightSync):
    def __init__(self, engine_urls: list[str], engine: str = "embedded", tp_size: int = 1, **kwargs):
        super().__init__(engine_urls, **kwargs)
        if engine not in SERIALIZERS:
            raise ValueError(f"tensor weight sync: engine must be one of {sorted(SERIALIZERS)}, got {engine!r}")
        self.serialize = SERIALIZERS[engine]
        self.tp_size = tp_size

    async def update(self, buckets: Iterable[Bucket], version: int) -> None:
        for bucket in buckets:
            await self.post_all("/update_weights_from_tensor",
                                update_from_tensor_payload([self.serialize(bucket)] * self.tp_size, None))
        # The version changes once every bucket is in: a half-updated engine still reports the old one.
        await self.post_all("/update_weight_version", {"new_version": str(version), "abort_all_requests": False})


def update_from_tensor_payload(serialized: list[str], version: int | None) -> dict:
    """sglang.srt.managers.io_struct.UpdateWeightsFromTensorReqInput"""
    return {"serialized_named_tensors": serialized, "load_format": None, "flush_cache": True,
            "weight_version": None if version is None else str(version)}
