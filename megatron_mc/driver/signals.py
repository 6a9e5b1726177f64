"""SIGTERM (scancel, Slurm's time limit, the launch script's cleanup) asks for a checkpoint and a clean exit
at the end of the current step instead of killing the run mid-step."""
from __future__ import annotations

import signal
from types import FrameType


class StopRequest:
    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True

    def __enter__(self) -> StopRequest:
        self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGTERM, self._previous)
