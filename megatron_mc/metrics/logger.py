"""MetricsLogger: the driver's one call per step, fanned out to the configured sinks and the display."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from megatron_mc.metrics.progress import ProgressDisplay
from megatron_mc.metrics.sinks import Sink, make_sinks
from megatron_mc.metrics.timers import PhaseTimers


class MetricsLogger:
    """`logger.timers.phase(name)` around each phase, then `logger.log_step(step, metrics)` once per step."""

    def __init__(self, run_dir: str | Path, logging_cfg: Any, total_steps: int, config: dict[str, Any] | None = None,
                 resume_step: int | None = None, sinks: list[Sink] | None = None):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.sinks = sinks if sinks is not None else make_sinks(self.run_dir, logging_cfg, config or {}, resume_step)
        self.progress = ProgressDisplay(total_steps, start_step=resume_step or 0, mode=logging_cfg.progress)
        self.timers = PhaseTimers(on_enter=self.progress.phase)

    def log_step(self, step: int, metrics: dict[str, Any]) -> dict[str, Any]:
        """Adds the step's phase timings to `metrics`, writes everything, returns the full row."""
        row = {**metrics, **self.timers.pop()}
        for sink in self.sinks:
            sink.write(step, row)
        self.progress.step_done(step, row)
        return row

    def message(self, text: str) -> None:
        self.progress.message(text)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()

    def __enter__(self) -> MetricsLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
