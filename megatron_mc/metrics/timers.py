"""Per-phase wall-clock timers for one RL step: `with timers.phase("rollout"): ...`."""
from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Callable, Iterator


class PhaseTimers:
    def __init__(self, on_enter: Callable[[str], None] | None = None, clock: Callable[[], float] = time.perf_counter):
        self._totals: dict[str, float] = defaultdict(float)
        self._on_enter = on_enter  # e.g. the progress display, to show the current phase
        self._clock = clock

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        if self._on_enter is not None:
            self._on_enter(name)
        start = self._clock()
        try:
            yield
        finally:
            self._totals[name] += self._clock() - start

    def pop(self) -> dict[str, float]:
        """Seconds spent in each phase since the last pop, as `time/<phase>` metrics, plus `time/step`."""
        out = {f"time/{name}": seconds for name, seconds in self._totals.items()}
        out["time/step"] = sum(self._totals.values())
        self._totals.clear()
        return out
