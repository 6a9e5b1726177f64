"""Where metrics go: one small class per destination, chosen from the logging config in `make_sinks`."""
from __future__ import annotations

import json
import math
import numbers
import time
from pathlib import Path
from typing import Any, Protocol

from megatron_mc.run_state import write_atomic

METRICS_FILE = "metrics.jsonl"


class Sink(Protocol):
    def write(self, step: int, metrics: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def numeric_items(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, numbers.Real) and not isinstance(v, bool)}


def _finite_or_none(value: Any) -> Any:
    """NaN and infinities are not JSON; they are written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class JsonlSink:
    """One JSON line per step in RUN/metrics.jsonl, flushed at once so a killed run loses nothing logged.

    On resume from step S the lines of steps after S (written before the kill, then redone) are dropped.
    """

    def __init__(self, run_dir: Path, resume_step: int | None):
        self.path = run_dir / METRICS_FILE
        if resume_step is not None and self.path.exists():
            kept = [row for row in parse_metrics_lines(self.path) if row["step"] <= resume_step]
            write_atomic(self.path, "".join(json.dumps(row) + "\n" for row in kept))
        self._file = self.path.open("a")

    def write(self, step: int, metrics: dict[str, Any]) -> None:
        row = {"step": step, "time": time.time(), **{k: _finite_or_none(v) for k, v in metrics.items()}}
        self._file.write(json.dumps(row, allow_nan=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class TensorBoardSink:
    def __init__(self, run_dir: Path):
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))

    def write(self, step: int, metrics: dict[str, Any]) -> None:
        for key, value in numeric_items(metrics).items():
            self._writer.add_scalar(key, value, step)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


class WandbSink:
    """Weights & Biases; the run id is kept in RUN/wandb_id so a resumed run continues the same W&B run."""

    def __init__(self, run_dir: Path, project: str, entity: str | None, config: dict[str, Any]):
        try:
            import wandb
        except ImportError:
            raise RuntimeError(f"logging.wandb_project is {project!r} but wandb is not installed; "
                               "run `pip install wandb` or unset logging.wandb_project") from None
        id_file = run_dir / "wandb_id"
        run_id = id_file.read_text().strip() if id_file.exists() else wandb.util.generate_id()
        write_atomic(id_file, run_id)
        self._run = wandb.init(project=project, entity=entity, id=run_id, resume="allow", dir=str(run_dir),
                               config=config, name=run_dir.name)

    def write(self, step: int, metrics: dict[str, Any]) -> None:
        self._run.log(numeric_items(metrics), step=step)

    def close(self) -> None:
        self._run.finish()


def tensorboard_available() -> bool:
    try:
        import torch.utils.tensorboard  # noqa: F401  (imports the tensorboard package)
    except ImportError:
        return False
    return True


def make_sinks(run_dir: Path, logging_cfg: Any, config: dict[str, Any], resume_step: int | None) -> list[Sink]:
    sinks: list[Sink] = []
    if logging_cfg.jsonl:
        sinks.append(JsonlSink(run_dir, resume_step))
    if logging_cfg.tensorboard and tensorboard_available():
        sinks.append(TensorBoardSink(run_dir))
    if logging_cfg.wandb_project:
        sinks.append(WandbSink(run_dir, logging_cfg.wandb_project, logging_cfg.wandb_entity, config))
    return sinks


def parse_metrics_lines(path: Path) -> list[dict[str, Any]]:
    """The rows of a metrics file; a partial last line (a run killed mid-write) is skipped."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    rows = []
    for line_no, line in enumerate(lines, 1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if line_no == len(lines):
                break
            raise ValueError(f"{path}:{line_no}: not valid JSON") from None
    return rows


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path}: no metrics file; is {run_dir} a run directory?")
    return parse_metrics_lines(path)
