"""A deterministic problem sampler over epochs whose state survives a kill and resume exactly.

Epoch e visits every problem once, in the order of a permutation drawn from a generator seeded with
(seed, e). The whole state is therefore (seed, epoch, position): restoring it replays the same problems
in the same order, none skipped or repeated, without pickling any RNG.
"""
from __future__ import annotations

from typing import Any

import numpy as np


class ProblemSampler:
    def __init__(self, num_problems: int, seed: int, shuffle: bool = True):
        if num_problems <= 0:
            raise ValueError(f"ProblemSampler needs at least one problem, got {num_problems}")
        self.num_problems = num_problems
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self.position = 0
        self._order = self._epoch_order(0)

    def _epoch_order(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.num_problems)
        return np.random.default_rng([self.seed, epoch]).permutation(self.num_problems)

    def next_batch(self, batch_size: int) -> list[int]:
        """The next `batch_size` problem indices; a batch that crosses an epoch end continues the next."""
        batch: list[int] = []
        while len(batch) < batch_size:
            if self.position == self.num_problems:
                self.epoch += 1
                self.position = 0
                self._order = self._epoch_order(self.epoch)
            take = min(batch_size - len(batch), self.num_problems - self.position)
            batch.extend(int(i) for i in self._order[self.position:self.position + take])
            self.position += take
        return batch

    def state_dict(self) -> dict[str, Any]:
        return {"num_problems": self.num_problems, "seed": self.seed, "shuffle": self.shuffle,
                "epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("num_problems", "seed", "shuffle"):
            if state[key] != getattr(self, key):
                raise ValueError(f"sampler state has {key}={state[key]!r} but this run has "
                                 f"{getattr(self, key)!r}; resume with the same data and train.seed")
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])
        self._order = self._epoch_order(self.epoch)
