"""Weights over a collective group, disaggregated: the trainer's source rank broadcasts to every engine.

`connect` forms the group (trainer = rank 0, engine i's TP ranks follow: rank_offset = 1 + i * tp_size, SGLang
adds its TP rank) through /init_weights_update_group; `send` announces a bucket's names, dtypes and shapes
through /update_weights_from_distributed while rank 0 broadcasts the tensors. `update` is the whole exchange
from one sender: a weight-update session around the buckets, then the version. Under pipeline parallelism
each stage's sender has its own group (its own rendezvous and group name, which SGLang keys its groups by)
and megatron_mc/trainer/engine_sync.py runs the session and the version once for all of them.
NCCL on GPUs, gloo on CPU.
"""
from __future__ import annotations

import asyncio
from collections.abc import Iterable

from rollout.weight_sync.base import Bucket, WeightSync, dtype_name
from rollout.weight_sync.process_group import StandaloneGroup, group_name_for


class DistributedWeightSync(WeightSync):
    def __init__(self, engine_urls: list[str], master_address: str, master_port: int, tp_size: int = 1,
                 backend: str = "nccl", **kwargs):
        super().__init__(engine_urls, **kwargs)
        self.master_address, self.master_port = master_address, master_port
        self.tp_size, self.backend = tp_size, backend
        self.group_name = group_name_for(master_address, master_port)
        self.group: StandaloneGroup | None = None

    async def connect(self) -> None:
        world_size = 1 + len(self.clients) * self.tp_size
        joins = [client.post("/init_weights_update_group", init_group_payload(
            self.master_address, self.master_port, 1 + i * self.tp_size, world_size, self.backend, self.group_name),
            retry=False)
            for i, client in enumerate(self.clients)]
        own = asyncio.to_thread(StandaloneGroup, self.backend, self.master_address, self.master_port, 0, world_size)
        *_, self.group = await asyncio.gather(*joins, own)

    async def send(self, bucket: Bucket) -> None:
        """One bucket, sent before the next is drawn: megatron_mc.weights.iter_hf_buckets refills one buffer for
        every bucket."""
        if self.group is None:
            await self.connect()
        announce = self.post_all("/update_weights_from_distributed",
                                 update_from_distributed_payload(bucket, None, self.group_name))
        await asyncio.gather(announce, asyncio.to_thread(self.group.send, [t for _, t in bucket]))

    async def update(self, buckets: Iterable[Bucket], version: int) -> None:
        await self.begin_session()
        try:
            for bucket in buckets:
                await self.send(bucket)
        finally:
            await self.end_session()
        await self.set_version(version)

    async def close(self) -> None:
        if self.group is not None:
            self.group.destroy()
            self.group = None
        await super().close()


def init_group_payload(master_address: str, master_port: int, rank_offset: int, world_size: int,
                       backend: str, group_name: str) -> dict:
    """sglang.srt.managers.io_struct.InitWeightsUpdateGroupReqInput"""
    return {"master_address": master_address, "master_port": master_port, "rank_offset": rank_offset,
            "world_size": world_size, "group_name": group_name, "backend": backend}


def update_from_distributed_payload(bucket: Bucket, version: int | None, group_name: str) -> dict:
    """sglang.srt.managers.io_struct.UpdateWeightsFromDistributedReqInput"""
    return {"names": [n for n, _ in bucket], "dtypes": [dtype_name(t) for _, t in bucket],
            "shapes": [list(t.shape) for _, t in bucket], "group_name": group_name, "flush_cache": True,
            "weight_version": None if version is None else str(version)}
