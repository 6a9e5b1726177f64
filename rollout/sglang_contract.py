"""The parts of SGLang 0.5.x's serving contract that the embedded server's strict mode enforces.

Each piece mirrors named SGLang code, so a rehearsal on CPU fails where a cluster run would:
- memory tags (sglang.srt.constants, scheduler_components/weight_updater.py): released per tag, None or []
  meaning all; `release_memory_occupation` asserts an idle scheduler and the failed assert kills the server;
  resuming a tag that is not released raises KeyError in the scheduler (`offload_tags.remove`), which also
  kills it; generating or loading weights into released memory touches unmapped CUDA memory (fatal too).
- the model-update lock (utils/aio_rwlock.py, tokenizer_manager.py): every /generate holds a reader lock
  for its whole life; a weight update while generation is not paused takes the writer lock, so it waits
  for running requests to finish and new requests wait behind it (writers first).
- weight-update sessions (scheduler_components/weight_updater.py): update_weights_from_tensor and
  _from_distributed answer success=false outside /begin_weight_update ... /end_weight_update.
"""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

KV_CACHE, WEIGHTS, CUDA_GRAPH = "kv_cache", "weights", "cuda_graph"
ALL_TAGS = (KV_CACHE, WEIGHTS, CUDA_GRAPH)
DEFAULT_GROUP_NAME = "weight_update_group"  # io_struct.InitWeightsUpdateGroupReqInput.group_name
HEALTH_GENERATION_ENV = "SGLANG_ENABLE_HEALTH_ENDPOINT_GENERATION"  # sglang.srt.environ, EnvBool(True)
# The exit status of a strict server that broke the contract the way that kills SGLang (EX_SOFTWARE).
STRICT_VIOLATION_EXIT_CODE = 70


def contract_message(what: str, why: str) -> str:
    return f"strict SGLang contract: {what}, {why}"


def tags_of(body: dict) -> tuple[str, ...]:
    """ReleaseMemoryOccupationReqInput.tags / ResumeMemoryOccupationReqInput.tags: None or [] = all."""
    tags = body.get("tags")
    if not tags:
        return ALL_TAGS
    unknown = sorted(set(tags) - set(ALL_TAGS))
    if unknown:
        raise ValueError(f"memory occupation: unknown tags {unknown}; SGLang knows {list(ALL_TAGS)}")
    return tuple(tags)


def health_generation_enabled(environ: dict[str, str]) -> bool:
    """How SGLang's EnvBool reads SGLANG_ENABLE_HEALTH_ENDPOINT_GENERATION (default true)."""
    value = environ.get(HEALTH_GENERATION_ENV, "true").lower()
    if value in ("true", "1", "yes", "y"):
        return True
    if value in ("false", "0", "no", "n"):
        return False
    raise ValueError(f'{HEALTH_GENERATION_ENV}="{value}" is not a valid boolean value (SGLang refuses it too)')


class ModelUpdateLock:
    """SGLang's RWLock: readers share, a writer waits for readers to leave and blocks new ones."""

    def __init__(self):
        self._cond = asyncio.Condition()
        self.readers = 0
        self._writer_active = False
        self._waiting_writers = 0

    @asynccontextmanager
    async def reader(self):
        async with self._cond:
            await self._cond.wait_for(lambda: not self._writer_active and self._waiting_writers == 0)
            self.readers += 1
        try:
            yield
        finally:
            async with self._cond:
                self.readers -= 1
                self._cond.notify_all()

    @asynccontextmanager
    async def writer(self):
        async with self._cond:
            self._waiting_writers += 1
            try:
                await self._cond.wait_for(lambda: not self._writer_active and self.readers == 0)
                self._writer_active = True
            finally:
                self._waiting_writers -= 1
        try:
            yield
        finally:
            async with self._cond:
                self._writer_active = False
                self._cond.notify_all()

    def is_locked(self) -> bool:
        return self._writer_active or self.readers > 0
