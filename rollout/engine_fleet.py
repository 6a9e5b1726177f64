"""The engines of a run and the router in front of them: start, stop, and the controls the driver uses.

Engines are Ray actors (sglang_engine.EngineActor) placed on their placement-group bundles; the router gets
their URLs and gives the client one URL.
"""
from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rollout.config import RolloutConfig
from rollout.placement import Placement
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

        remote = ray.remote(EngineActor)
        fleet = cls(cfg)
        for i in range(cfg.num_engines):
            options = {"num_cpus": 0, "max_concurrency": 8}
            if placement is not None:
                options["scheduling_strategy"] = placement.engine_strategy(i)
            if use_gpu:
                options.update(num_gpus=0.01, runtime_env=GPU_RUNTIME_ENV)
            fleet.actors.append(remote.options(**options).remote(
                cfg, model_path, i, str(log_dir), seed=seed + 1000 * i, use_gpu=use_gpu))
        try:
            fleet.engine_urls = ray.get([actor.start.remote() for actor in fleet.actors])
            fleet.router = Router.start(fleet.engine_urls, cfg.router, Path(log_dir))
        except Exception:
            fleet.stop()
            raise
        return fleet

    def info(self) -> list[dict]:
        import ray

        return ray.get([actor.info.remote() for actor in self.actors])

    def note_weights(self, model_path: str, weight_version: int) -> None:
        import ray

        ray.get([actor.note_weights.remote(model_path, str(weight_version)) for actor in self.actors])

    async def update_weights(self, sync: WeightSync, buckets: Iterable[Bucket], version: int) -> None:
        """Pause generation (running requests come back aborted and the client asks again), load the new
        weights, flush the KV cache computed with the old ones, continue."""
        await asyncio.to_thread(self.pause)
        try:
            await sync.update(buckets, version)
            await asyncio.to_thread(self.flush_cache)
            if (source := sync.restart_source()) is not None:
                await asyncio.to_thread(self.note_weights, source, version)
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
