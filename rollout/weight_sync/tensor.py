"""Weights as tensors, colocated: /update_weights_from_tensor, one request per bucket.

serialized_named_tensors holds one entry per TP rank of the engine. For SGLang an entry is CUDA IPC handles
that only the GPU's own TP rank may open (see ipc.py), so entry j must be made by the process on TP rank j's
GPU: megatron_mc/trainer/engine_sync.py has each colocated train rank make its entry and one of them `send`
the list. `update` makes every entry in one process, which only suits the embedded engine (the in-memory
safetensors form of rollout/tensor_bytes.py) or an SGLang engine on one GPU. The serializer is chosen by
engine kind.
"""
from __future__ import annotations

from collections.abc import Iterable

from rollout.tensor_bytes import encode_named_tensors
from rollout.weight_sync.base import Bucket, WeightSync
from rollout.weight_sync.ipc import sglang_payload


def embedded_payload(bucket: Bucket) -> tuple[str, Bucket]:
    return encode_named_tensors(bucket), []  # bytes: nothing to keep alive


SERIALIZERS = {"sglang": sglang_payload, "embedded": embedded_payload}


class TensorWeightSync(WeightSync):
    def __init__(self, engine_urls: list[str], engine: str = "embedded", tp_size: int = 1, **kwargs):
        super().__init__(engine_urls, **kwargs)
        if engine not in SERIALIZERS:
            raise ValueError(f"tensor weight sync: engine must be one of {sorted(SERIALIZERS)}, got {engine!r}")
        self.engine = engine
        self.serialize = SERIALIZERS[engine]
        self.tp_size = tp_size

    async def send(self, payloads: list[str]) -> None:
        """One bucket: entry j for TP rank j. The engines answer once every TP rank has taken its entry."""
        if len(payloads) != self.tp_size:
            raise ValueError(f"tensor weight sync: {len(payloads)} payloads for engines of tp_size {self.tp_size}; "
                             "serialized_named_tensors needs one per TP rank")
        await self.post_all("/update_weights_from_tensor", update_from_tensor_payload(payloads, None))

    async def update(self, buckets: Iterable[Bucket], version: int) -> None:
        gpus = len(self.clients) * self.tp_size
        if self.engine == "sglang" and gpus > 1:
            raise ValueError(f"tensor weight sync from one process into {gpus} engine GPUs: CUDA IPC handles must be "
                             "made on each TP rank's own GPU; push through megatron_mc/trainer/engine_sync.py")
        await self.begin_session()
        try:
            for bucket in buckets:
                payload, keep = self.serialize(bucket)
                await self.send([payload] * self.tp_size)
                del keep  # the engines have answered: they hold their own references now
        finally:
            await self.end_session()
        await self.set_version(version)


def update_from_tensor_payload(serialized: list[str], version: int | None) -> dict:
    """sglang.srt.managers.io_struct.UpdateWeightsFromTensorReqInput"""
    return {"serialized_named_tensors": serialized, "load_format": None, "flush_cache": True,
            "weight_version": None if version is None else str(version)}
