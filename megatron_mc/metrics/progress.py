"""What a person watching the run sees: step, phase, ETA, reward and pass rate.

On a terminal one status line is redrawn in place; elsewhere (a Slurm log, a pipe) each finished step
is one plain line, so logs stay readable.
"""
from __future__ import annotations

import sys
import time
from typing import Any, Callable, TextIO

REWARD_KEY = "rollout/reward_mean"
PASS_RATE_KEY = "rollout/pass_rate"


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class ProgressDisplay:
    def __init__(self, total_steps: int, start_step: int = 0, mode: str = "auto", stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.stream = stream or sys.stderr
        if mode == "auto":
            mode = "live" if self.stream.isatty() else "plain"
        self.mode = mode  # live | plain | off
        self.total_steps = total_steps
        self.start_step = start_step
        self.step = start_step
        self._clock = clock
        self._started = clock()
        self._last: dict[str, Any] = {}

    def eta_seconds(self) -> float | None:
        done = self.step - self.start_step
        if done <= 0:
            return None
        return (self._clock() - self._started) / done * (self.total_steps - self.step)

    def _status(self, phase: str | None) -> str:
        parts = [f"step {self.step}/{self.total_steps}"]
        if phase:
            parts.append(f"[{phase}]")
        eta = self.eta_seconds()
        parts.append(f"ETA {format_duration(eta)}" if eta is not None else "ETA --")
        for key, label in ((REWARD_KEY, "reward"), (PASS_RATE_KEY, "pass")):
            if key in self._last:
                parts.append(f"{label} {self._last[key]:.3f}")
        if "time/step" in self._last:
            parts.append(f"{self._last['time/step']:.1f}s/step")
        return " | ".join(parts)

    def phase(self, name: str) -> None:
        """Called when a phase of the current step begins (PhaseTimers' on_enter)."""
        if self.mode == "live":
            self.stream.write("\r\033[2K" + self._status(name))
            self.stream.flush()

    def step_done(self, step: int, metrics: dict[str, Any]) -> None:
        self.step = step
        self._last = metrics
        if self.mode == "off":
            return
        prefix = "\r\033[2K" if self.mode == "live" else ""
        end = "" if self.mode == "live" and step < self.total_steps else "\n"
        self.stream.write(prefix + self._status(None) + end)
        self.stream.flush()

    def message(self, text: str) -> None:
        """A line that stays (evaluation results, checkpoint saved), printed above the live line."""
        if self.mode == "off":
            return
        prefix = "\r\033[2K" if self.mode == "live" else ""
        self.stream.write(prefix + text + "\n")
        self.stream.flush()
