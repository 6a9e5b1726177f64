"""The rollout side of the loop: batches produced one after another, up to `ahead` before the trainer.

  ahead = 0  synchronous: batch k starts when the trainer asks for it (its weights: version k-1)
  ahead = K  train.async: batch k may start once the trainer has started step k-K, so its tokens come from
             versions k-1-K .. k-1 and the manager asks again for any sample older than that

Each batch remembers the sampler and temperature state it started from. `rewind()` drops every batch the
trainer has not taken (cancelling its generations) and puts that state back, so a checkpoint taken then
resumes into exactly the batches a continuing run would have produced: nothing is lost or drawn twice.
"""
from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass
from typing import Any

from rollout.manager import RolloutBatch


@dataclass
class ProducedBatch:
    step: int
    rollout: RolloutBatch
    temperature: float
    problem_ids: list[str]  # as drawn, for the step's data/problem_ids
    min_version: int  # the oldest weight version its tokens may carry
    epoch: int  # the sampler's epoch once its problems were drawn


@dataclass
class _StartState:
    sampler: dict[str, Any]
    temperature: dict[str, Any]


class RolloutAhead:
    def __init__(self, session, stream, temperature, ahead: int, last_step: int):
        self.session = session
        self.stream = stream
        self.temperature = temperature
        self.ahead = ahead
        self.last_step = last_step
        self._ready: dict[int, ProducedBatch] = {}
        self._started: dict[int, _StartState] = {}
        self._trainer_at = 0  # the step the trainer has started
        self._changed = asyncio.Condition()
        self._producer: asyncio.Task | None = None

    def start(self, first_step: int) -> None:
        self._trainer_at = first_step - 1
        self._producer = asyncio.ensure_future(self._produce_from(first_step))

    async def take(self, step: int) -> ProducedBatch:
        """Batch `step` once complete; from now on the producer may run up to step + ahead."""
        async with self._changed:
            self._trainer_at = step
            self._changed.notify_all()
            await self._changed.wait_for(lambda: step in self._ready or self._producer.done())
        if step not in self._ready:
            self._producer.result()  # raises what stopped the producer
            raise RuntimeError(f"the rollout producer ended before batch {step}")
        self._started.pop(step, None)
        return self._ready.pop(step)

    async def rewind(self) -> int | None:
        """Stop producing; put back the sampler and temperature state of the first batch not taken.
        Returns that batch's step (None: none had started). `start(step)` produces again from there."""
        await self.stop()
        first = min(self._started, default=None)
        if first is not None:
            state = self._started[first]
            self.stream.sampler.load_state_dict(state.sampler)
            self.temperature.load_state_dict(state.temperature)
            self.stream.take_drawn()
        self._ready.clear()
        self._started.clear()
        return first

    async def stop(self, raise_failure: bool = True) -> None:
        """Cancel the producer; what made it fail, if it did, is raised (unless `raise_failure` is False:
        the loop is already ending on an error of its own)."""
        producer, self._producer = self._producer, None
        if producer is None:
            return
        if not producer.done():
            producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)
        elif raise_failure and not producer.cancelled():
            producer.result()

    async def _produce_from(self, step: int) -> None:
        try:
            for batch_step in range(step, self.last_step + 1):
                async with self._changed:
                    await self._changed.wait_for(lambda: self._trainer_at >= batch_step - self.ahead)
                produced = await self._produce(batch_step)
                async with self._changed:
                    self._ready[batch_step] = produced
                    self._changed.notify_all()
        except Exception:
            async with self._changed:  # take() must not wait for a batch that will not come
                self._changed.notify_all()
            raise

    async def _produce(self, step: int) -> ProducedBatch:
        cfg, manager = self.session.cfg, self.session.manager
        self._started[step] = _StartState(copy.deepcopy(self.stream.sampler.state_dict()),
                                          copy.deepcopy(self.temperature.state_dict()))
        min_version = step - 1 - self.ahead
        manager.expected_weight_version = min_version
        temperature = await self.temperature.for_step(step, manager)
        rollout = await manager.rollout(self.stream, cfg.train.train_batch_size, temperature)
        return ProducedBatch(step, rollout, temperature, self.stream.take_drawn(), min_version,
                             self.stream.sampler.epoch)
