"""The trainer's side of weight sync: every train rank walks its pipeline stage's HF buckets (TP shards and
experts gathered on the way, megatron_mc/weights/buckets.py) and the ranks holding whole tensors push them
into the engines through rollout.weight_sync. Collective: every rank calls `update` with the same arguments.

- distributed, disk: the source rank of each pipeline stage (its first tensor-, context- and data-parallel
  rank) sends that stage's tensors, so every layer goes out once; a tied output layer goes out once, as the
  first stage's embedding (models/adapter.py marks the last stage's copy not exported).
  distributed: each stage's source forms its own group with every engine (a rendezvous on its node, its own
  group name, which SGLang keys its groups by; slime forms one per pipeline rank), and the stages take turns:
  an engine serves one request at a time, so two stages' group rendezvous or broadcasts in flight together
  could be taken in different orders by different engines and deadlock.
  disk: the stages write their own shards into one staging folder at once (a file system shared with the
  engines), then one version is published.
  The first stage's source (global rank 0) opens and closes the engines' weight-update session and sets the
  version once, after every stage is in.
- tensor (colocated, pp 1): TP rank j of engine e sits on the GPU of train rank engine_ranks[e][j] (by
  default e * tp + j: rollout/placement.py gives both the same bundles). Each of those ranks makes its GPU's
  payload of every bucket (rollout/weight_sync/ipc.py), the first gathers them over a gloo group per engine
  and posts the list, in TP rank order, to its engine.
A rank that fails keeps walking the buckets (the walk is collective) and sends nothing more; the ranks agree
on failure at each turn, so nobody waits for a stage that gave up, and the version is not set.
"""
from __future__ import annotations

import os
import socket
from datetime import timedelta
from typing import Callable, Iterator, Optional

import torch
import torch.distributed as dist

from rollout.weight_sync import make_weight_sync
from rollout.weight_sync.base import Bucket
from rollout.weight_sync.ipc import visible_gpu
from rollout.weight_sync.tensor import SERIALIZERS

DEFAULT_BUCKET_BYTES = 512 << 20
# How long the gloo groups below wait for a collective, e.g. for the other stages' turns.
TURN_TIMEOUT = timedelta(minutes=30)


class EngineWeightSync:
    def __init__(self, buckets_of: Callable[[int], Iterator[Bucket]], loop):
        """`buckets_of(bucket_bytes)` starts a walk over this rank's HF buckets; `loop` runs the transports."""
        from megatron.core import parallel_state as ps

        self.buckets_of, self.loop = buckets_of, loop
        self.stage = ps.get_pipeline_model_parallel_rank()
        self.stages = ps.get_pipeline_model_parallel_world_size()
        self.source = (ps.get_tensor_model_parallel_rank() == 0
                       and ps.get_data_parallel_rank(with_context_parallel=True) == 0)
        self.coordinator = self.source and self.stage == 0
        self._transports: dict = {}
        self._world = None
        self._ipc_groups: dict = {}

    def update(self, kind: str, engine_urls: list[str], version: int, **options) -> None:
        pushes = {"distributed": self._distributed, "disk": self._disk, "tensor": self._tensor}
        if kind not in pushes:
            raise ValueError(f"rollout.weight_sync must be one of {sorted(pushes)}, got {kind!r}")
        if kind == "distributed" and self.stages > 1 and {"master_address", "master_port"} & set(options):
            raise ValueError("weight sync distributed with pipeline stages: each stage's source picks its own "
                             "rendezvous (its node, a free port); do not pass master_address / master_port")
        bucket_bytes = int(options.pop("bucket_bytes", DEFAULT_BUCKET_BYTES))
        if options.pop("reform", False):  # an engine restarted and left its groups: every transport anew
            self.loop.run_until_complete(self.close())
            self._transports.clear()
        pushes[kind](engine_urls, version, lambda: self.buckets_of(bucket_bytes), options)

    async def close(self) -> None:
        for transport in self._transports.values():
            await transport.close()

    # ---- per transport -----------------------------------------------------------------------------
    def _distributed(self, engine_urls, version, buckets, options) -> None:
        sync, error = self._transport("distributed", engine_urls, options) if self.source else (None, None)
        if self.coordinator and error is None:
            error = self._attempt(sync.begin_session())
        opened = self.coordinator and error is None
        failed = self._any_failed(error)
        for stage in range(self.stages):
            if failed:
                break
            if stage == self.stage:
                error = self._walk(buckets(), sync.send if self.source else None)
            failed = self._any_failed(error)
        if opened:  # closed even after a failure, so that the next update can open one
            closed = self._attempt(sync.end_session())
            error = error or closed
        if self.coordinator and not failed and error is None:
            error = self._attempt(sync.set_version(version))
        if error is not None:
            raise error

    def _disk(self, engine_urls, version, buckets, options) -> None:
        sync, error = self._transport("disk", engine_urls, options) if self.source else (None, None)
        if self.coordinator and error is None:
            error = _call(sync.prepare, version)
        if not self._any_failed(error):  # the staging folder exists before anyone writes
            walk = buckets()
            if self.source:
                error = _call(sync.write_part, walk, version, f"pp{self.stage}-")
            for _ in walk:  # collective: finish it even when the write failed
                pass
            if not self._any_failed(error) and self.coordinator:
                path = None
                try:
                    path = sync.publish(version)
                except Exception as e:  # noqa: BLE001 - raised below, after the other ranks are released
                    error = e
                if path is not None:
                    error = self._attempt(sync.load(path, version))
        if error is not None:
            raise error

    def _tensor(self, engine_urls, version, buckets, options) -> None:
        if self.stages > 1:
            raise ValueError("weight_sync: tensor needs pp 1 (each engine TP rank's payload comes from the train "
                             "rank on its GPU, which holds every layer only without pipeline stages); use "
                             "weight_sync: distributed or disk")
        engine, tp_size = options.get("engine", "embedded"), int(options.get("tp_size", 1))
        engine_ranks = options.get("engine_ranks") or colocated_ranks(len(engine_urls), tp_size,
                                                                      dist.get_world_size())
        member = self._ipc_group(engine_ranks)
        poster = member is not None and dist.get_rank() == member[1][0]
        sync, error = self._transport("tensor", [engine_urls[member[0]]], {"engine": engine, "tp_size": tp_size}) \
            if poster else (None, None)
        if poster and error is None:
            error = self._attempt(sync.begin_session())
        opened = poster and error is None
        failure = self._group_status(member, error)
        for bucket in buckets():
            if member is None or failure is not None:
                continue  # still walking: the walk is collective
            payload, keep = SERIALIZERS[engine](bucket)
            gathered = [None] * len(member[1]) if poster else None
            dist.gather_object(payload, gathered, dst=member[1][0], group=member[2])
            if poster:  # gathered in group rank order, i.e. by global rank; the engine wants TP rank order
                by_rank = dict(zip(sorted(member[1]), gathered))
                error = self._attempt(sync.send([by_rank[r] for r in member[1]]))
            failure = self._group_status(member, error)  # every rank keeps its payload's tensors until here
            del keep
        if opened:
            closed = self._attempt(sync.end_session())
            error = error or closed
            if error is None:
                error = self._attempt(sync.set_version(version))
        if error is not None:
            raise error

    # ---- helpers -----------------------------------------------------------------------------------
    def _transport(self, kind: str, engine_urls: list[str], options: dict):
        """(transport, None), or (None, why it could not be made). One per (kind, engines, options), kept
        across calls: a `distributed` group is formed once."""
        key = (kind, tuple(engine_urls), repr(sorted(options.items())))
        if key not in self._transports:
            if kind == "distributed":
                options = {"master_address": node_address(), "master_port": free_port(), **options}
            try:
                self._transports[key] = make_weight_sync(kind, engine_urls, **options)
            except Exception as e:  # noqa: BLE001 - raised by the caller once the ranks agree
                return None, e
        return self._transports[key], None

    def _walk(self, buckets: Iterator[Bucket], send) -> Optional[Exception]:
        """Every bucket, each sent (when `send` is given) before the next is drawn, as iter_hf_buckets
        requires; after a failure the walk goes on (it is collective) and nothing more is sent."""
        error = None
        for bucket in buckets:
            if send is not None and error is None:
                error = self._attempt(send(bucket))
        return error

    def _attempt(self, coroutine) -> Optional[Exception]:
        try:
            self.loop.run_until_complete(coroutine)
        except Exception as e:  # noqa: BLE001 - raised by the caller once the ranks agree
            return e
        return None

    def _world_group(self):
        if self._world is None:
            self._world = dist.new_group(backend="gloo", timeout=TURN_TIMEOUT)
        return self._world

    def _any_failed(self, error: Optional[Exception]) -> bool:
        """Collective over every rank: whether any of them failed."""
        flag = torch.tensor([int(error is not None)])
        dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self._world_group())
        return bool(flag.item())

    def _ipc_group(self, engine_ranks: list[list[int]]):
        """(engine index, its train ranks, their gloo group) for this rank, or None; the groups are formed
        once, by every rank, after checking that each engine's ranks share a node and use distinct GPUs."""
        key = tuple(map(tuple, engine_ranks))
        if key not in self._ipc_groups:
            where = [None] * dist.get_world_size()
            dist.all_gather_object(where, (node_address(), visible_gpu(_local_cuda_index(),
                                                                        os.environ.get("CUDA_VISIBLE_DEVICES"))),
                                   group=self._world_group())
            check_colocated(engine_ranks, where)
            groups = [dist.new_group(ranks, backend="gloo", timeout=TURN_TIMEOUT) for ranks in engine_ranks]
            rank = dist.get_rank()
            self._ipc_groups[key] = next(((e, ranks, groups[e]) for e, ranks in enumerate(engine_ranks)
                                          if rank in ranks), None)
        return self._ipc_groups[key]

    @staticmethod
    def _group_status(member, error: Optional[Exception]) -> Optional[str]:
        """The poster's failure, told to its engine's ranks (None: all well), so they stop together."""
        if member is None:
            return None
        status = [None if error is None else f"{type(error).__name__}: {error}"]
        dist.broadcast_object_list(status, src=member[1][0], group=member[2])
        return status[0]


def colocated_ranks(engines: int, tp_size: int, world_size: int) -> list[list[int]]:
    """The train rank on the GPU of each engine's TP ranks, colocated: bundle i holds train rank i, and
    engine e's TP ranks hold bundles e * tp_size ... (rollout/placement.py)."""
    if engines * tp_size > world_size:
        raise ValueError(f"colocated tensor weight sync: {engines} engines of tp_size {tp_size} need "
                         f"{engines * tp_size} GPUs shared with the trainer, which has {world_size} ranks")
    return [[e * tp_size + j for j in range(tp_size)] for e in range(engines)]


def check_colocated(engine_ranks: list[list[int]], where: list[tuple[str, Optional[str]]]) -> None:
    """CUDA IPC stays within a node and each TP rank opens its own GPU's handles: the train ranks making an
    engine's payloads must share a node and sit on distinct GPUs. `where[rank]` is (node address, GPU as
    CUDA_VISIBLE_DEVICES names it, None without GPUs)."""
    for engine, ranks in enumerate(engine_ranks):
        nodes = sorted({where[r][0] for r in ranks})
        if len(nodes) > 1:
            raise ValueError(f"tensor weight sync: engine {engine}'s TP ranks sit with train ranks {ranks} on nodes "
                             f"{nodes}; CUDA IPC cannot cross nodes: use weight_sync: distributed")
        gpus = [where[r][1] for r in ranks]
        if None not in gpus and len(set(gpus)) < len(gpus):
            raise ValueError(f"tensor weight sync: train ranks {ranks} (engine {engine}'s TP ranks) share GPUs "
                             f"{gpus} on node {nodes[0]}; each TP rank needs the payload made on its own GPU")


def node_address() -> str:
    import ray

    return ray.util.get_node_ip_address()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _local_cuda_index() -> int:
    return torch.cuda.current_device() if torch.cuda.is_available() else 0


def _call(function, *args) -> Optional[Exception]:
    try:
        function(*args)
    except Exception as e:  # noqa: BLE001 - raised by the caller once the ranks agree
        return e
    return None
