"""Who holds the GPUs, and handing them over: colocated engines and train ranks take turns on every GPU.

SGLang's memory saver frees an engine's weights and KV cache on release, and the weights come back
with stale contents, so the order is fixed:

  to the trainer:  engines idle -> engines release weights and KV cache -> trainer loads its state back
  to the engines:  trainer offloads gradients and optimizer state (GPU memory freed) -> engine weights back
                   -> weight update (read from the trainer's weights, still on its GPUs) -> trainer offloads
                   its weights -> KV cache (and CUDA graphs) back

Disaggregated placement has nothing to hand over: the weight update is all there is.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

from megatron_mc.driver.engine_weights import sync_engine_weights

WEIGHTS = ["weights"]
# SGLang's release without tags frees its CUDA graphs too; they come back with the KV cache (as in slime),
# else the next generation runs graphs on freed memory and kills the server.
KV_CACHE = ["kv_cache", "cuda_graph"]


class GpuTimeShare:
    def __init__(self, session):
        self.session = session
        self.colocated = session.cfg.rollout.placement == "colocated"
        self.trainer_holds_gpus = True  # the train ranks are resident once built

    def to_trainer(self) -> None:
        if not self.colocated or self.trainer_holds_gpus:
            return
        self.session.fleet.release_memory()  # aborts what is outstanding and flushes first
        self.session.group.onload()
        self.trainer_holds_gpus = True

    def to_engines(self, version: int, reform: bool = False) -> None:
        """Hand the GPUs to the engines with the weights of `version` loaded (`reform`: a distributed weight
        group formed anew, after an engine restarted)."""
        if not self.colocated:
            with self._generation_paused():
                sync_engine_weights(self.session, version, reform)
            return
        self.session.group.offload(keep_weights=True)
        self.trainer_holds_gpus = False
        self.session.fleet.resume_memory(WEIGHTS)
        sync_engine_weights(self.session, version, reform)
        self.session.group.offload()
        self.session.fleet.resume_memory(KV_CACHE)

    @contextlib.contextmanager
    def _generation_paused(self) -> Iterator[None]:
        """Asynchronous training generates during weight updates: the engines pause (running requests come
        back aborted, the rollout manager continues or restarts them), load, drop the KV cache computed with
        the old weights, and go on. Synchronous training has nothing running then."""
        if not self.session.cfg.train.async_.enabled:
            yield
            return
        fleet = self.session.fleet
        self.session.manager.note_pause()  # the aborts that follow are not failures
        fleet.pause()
        try:
            yield
            fleet.flush_cache()
        finally:
            fleet.resume_generation()

    @contextlib.contextmanager
    def trainer_awake(self, version: int) -> Iterator[None]:
        """The trainer's state on its GPUs for a while (a checkpoint, an HF export), then the engines
        get them back with `version` loaded again (released weights do not survive)."""
        was_engines = self.colocated and not self.trainer_holds_gpus
        self.to_trainer()
        try:
            yield
        finally:
            if was_engines:
                self.to_engines(version)

    def readmit_restarted(self, version: int) -> list[int]:
        """Engines restarted since the last push came back with the start weights (tensor and distributed
        sync leave nothing on disk to load): push every engine `version` again, with a new group, and route
        to them again. Returns the restarted engines."""
        stale = self.session.fleet.engines_needing_weights(version)
        if stale:
            self.session.fleet.wait_answering(stale, self.session.cfg.rollout.engine_startup_timeout_s)
            self.to_trainer()
            self.to_engines(version, reform=True)
            self.session.fleet.readmit(stale)
        return stale
