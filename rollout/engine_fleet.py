"""The engines of a run and the router in front of them: start, stop, and the controls the driver uses.

Engines are Ray actors (sglang_engine.EngineActor) placed on their placement-group bundles, each server
bound to its node's address; the router, bound to the driver's node, gets their URLs and gives the client one
URL. An engine restarted with weights older than the newest pushed (tensor or distributed sync keep no copy
a restart could load) leaves the router until the trainer has pushed it the newest weights and `readmit`s it.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rollout.config import RolloutConfig
from rollout.placement import ENGINE_GPU_SHARE, Placement
from rollout.router import Router
from rollout.sglang_engine import EngineActor
from rollout.weight_sync import Bucket, WeightSync

# Engines on GPU: Ray must not narrow CUDA_VISIBLE_DEVICES to a fraction of a GPU; SGLang picks its GPUs
# from --base-gpu-id and --tp-size.
GPU_RUNTIME_ENV = {"env_vars": {"RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES": "1"}}


@dataclass
class EngineFleet:
    cfg: RolloutConfig
    actors: list = field(default_factory=list)
    engine_urls: list[str] = field(default_factory=list)
    router: Router | None = None

    @property
    def url(self) -> str:
        return self.router.url

    @classmethod
    def start(cls, cfg: RolloutConfig, model_path: str, log_dir: str | Path,
              placement: Placement | None = None, use_gpu: bool = False, seed: int = 0) -> EngineFleet:
        import ray

        from rollout.waits import get_within

        remote = ray.remote(EngineActor)
        fleet = cls(cfg)
        gpu_bundles = use_gpu or (placement is not None and _holds_gpus(placement))
        names = []
        for i in range(cfg.num_engines):
            options = {"num_cpus": 0, "max_concurrency": 8}
            base_gpu_id = None
            if placement is not None:
                options["scheduling_strategy"] = placement.engine_strategy(i)
                if gpu_bundles:  # the bundle's GPU id on its node, found when the placement was made
                    base_gpu_id = placement.engine_location(i)[1]
            if gpu_bundles:
                # a share, so a colocated train rank's share fits on the same one-GPU bundle
                options.update(num_gpus=ENGINE_GPU_SHARE, runtime_env=GPU_RUNTIME_ENV)
            names.append(placement.engine_name(i) if placement is not None else f"engine {i}")
            fleet.actors.append(remote.options(**options).remote(
                cfg, model_path, i, str(log_dir), seed=seed + 1000 * i, use_gpu=use_gpu, base_gpu_id=base_gpu_id))
        try:
            # scheduling (placement), launch and /health of every engine
            fleet.engine_urls = get_within([actor.start.remote() for actor in fleet.actors],
                                           cfg.engine_startup_timeout_s + 60, names, "starting the engines")
            fleet.router = Router.start(fleet.engine_urls, cfg.router, Path(log_dir),
                                        request_timeout_s=cfg.request_timeout_s,
                                        routed_experts=cfg.return_routed_experts)
            ray.get([actor.use_router.remote(fleet.router.url) for actor in fleet.actors])
        except Exception:
            fleet.stop()
            raise
        return fleet

    def info(self) -> list[dict]:
        import ray

        return ray.get([actor.info.remote() for actor in self.actors])

    def note_weights(self, model_path: str | None, weight_version: int) -> None:
        """Call after every weight sync: the engines now serve `weight_version`. `model_path`: a checkpoint of
        it for restarts (disk sync); None when the weights went from memory (tensor, distributed), so an
        engine restarted later comes back older, leaves the router, and waits for `readmit`."""
        import ray

        ray.get([actor.note_weights.remote(model_path, str(weight_version)) for actor in self.actors])

    def engines_needing_weights(self, version: int) -> list[int]:
        """Indices of the engines whose running server holds weights older than `version` (or does not answer,
        e.g. while it restarts): push them the newest weights (re-forming the weight update group first under
        distributed sync), then `readmit` them."""
        import ray

        serving = ray.get([actor.serving_version.remote() for actor in self.actors])
        return [i for i, v in enumerate(serving) if v is None or v < version]

    def wait_answering(self, indices: Iterable[int], timeout_s: float) -> None:
        """Until the servers of these engines answer again (a restart takes a while); an engine that gave up
        (restarts exhausted, a strict-contract violation) raises at once, naming why."""
        import ray

        from rollout.waits import DeadlineExceeded

        pending = list(indices)
        deadline = time.monotonic() + timeout_s
        while pending:
            for index, info in zip(pending, ray.get([self.actors[i].info.remote() for i in pending])):
                if info["failed"]:
                    raise RuntimeError(info["failed"])
            versions = ray.get([self.actors[i].serving_version.remote() for i in pending])
            pending = [i for i, v in zip(pending, versions) if v is None]
            if pending and time.monotonic() > deadline:
                raise DeadlineExceeded(f"engines {pending} did not answer within {timeout_s:.0f} s of restarting")
            if pending:
                time.sleep(1.0)

    def readmit(self, indices: Iterable[int]) -> None:
        """Route to these engines again; refused (RuntimeError naming the engine) while one still holds weights
        older than the newest noted with `note_weights`."""
        import ray

        ray.get([self.actors[i].rejoin_router.remote() for i in indices])

    async def update_weights(self, sync: WeightSync, buckets: Iterable[Bucket], version: int) -> None:
        """Pause generation (running requests come back aborted and the client asks again), load the new
        weights, flush the KV cache computed with the old ones, continue."""
        await asyncio.to_thread(self.pause)
        try:
            await sync.update(buckets, version)
            await asyncio.to_thread(self.flush_cache)
            await asyncio.to_thread(self.note_weights, sync.restart_source(), version)
        finally:
            await asyncio.to_thread(self.resume_generation)

    def release_memory(self, tags: list[str] | None = None) -> None:
        """Every engine aborts what it runs, flushes until idle, then releases `tags` (None = all)."""
        self._all("release_memory", tags)

    def resume_memory(self, tags: list[str] | None = None) -> None:
        self._all("resume_memory", tags)

    def pause(self) -> None:
        self._all("pause")

    def flush_cache(self) -> None:
        self._all("flush_cache")

    def resume_generation(self) -> None:
        self._all("resume_generation")

    def stop(self) -> None:
        import ray

        if self.router is not None:
            self.router.stop()
        ray.get([actor.stop.remote() for actor in self.actors])
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []

    def _all(self, method: str, *args) -> None:
        from rollout.waits import DEFAULT_TIMEOUT_S, get_within

        names = [f"engine {i}" + (f" at {self.engine_urls[i]}" if i < len(self.engine_urls) else "")
                 for i in range(len(self.actors))]
        get_within([getattr(actor, method).remote(*args) for actor in self.actors], DEFAULT_TIMEOUT_S, names,
                   f"engines' {method}")


def _holds_gpus(placement: Placement) -> bool:
    """Whether the engines' bundles reserve GPUs (a GPU run, or a rehearsal declaring GPUs on CPU nodes)."""
    return placement.rollout_group.bundle_specs[placement.engine_bundles[0][0]].get("GPU", 0) > 0
