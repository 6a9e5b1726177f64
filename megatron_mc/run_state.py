"""Bookkeeping around each checkpoint: the step layout, the run state, completeness and pruning.

Layout:  CHECKPOINTS/step_000123/
             model/            the Megatron distributed checkpoint (megatron_mc.checkpoint writes it)
             run_state.json    step, sampler state (data position), temperature controller, metrics history
             COMPLETE          written last: a step directory without it is ignored and later removed

A save is: `begin_checkpoint` -> the model checkpoint -> `finish_checkpoint` (run state, COMPLETE,
pruning). A process killed anywhere in between leaves the previous complete checkpoint the newest.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STEP_PATTERN = re.compile(r"^step_(\d+)$")
RUN_STATE_NAME = "run_state.json"
COMPLETE_NAME = "COMPLETE"
MODEL_SUBDIR = "model"
HF_EXPORT_DIR = "hf"  # RUN/hf/step_000123/: HF checkpoints exported during and at the end of a run


class ResumeError(ValueError):
    """A resume request that names no usable checkpoint; the message says which path and why."""


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class RunState:
    step: int
    sampler: dict[str, Any] = field(default_factory=dict)
    temperature_controller: dict[str, Any] = field(default_factory=dict)
    metrics_history: list[dict[str, Any]] = field(default_factory=list)


def step_dir(checkpoint_root: str | Path, step: int) -> Path:
    return Path(checkpoint_root) / f"step_{step:06d}"


def is_complete(folder: str | Path) -> bool:
    return (Path(folder) / COMPLETE_NAME).is_file()


def begin_checkpoint(checkpoint_root: str | Path, step: int) -> Path:
    """Create (or clear a leftover incomplete) step directory; the model checkpoint goes into its model/."""
    folder = step_dir(checkpoint_root, step)
    if folder.exists():
        if is_complete(folder):
            raise FileExistsError(f"{folder}: a complete checkpoint for step {step} already exists")
        shutil.rmtree(folder)
    (folder / MODEL_SUBDIR).mkdir(parents=True)
    return folder


def finish_checkpoint(folder: str | Path, state: RunState, keep_last: int) -> None:
    folder = Path(folder)
    write_atomic(folder / RUN_STATE_NAME, json.dumps(asdict(state)))
    mark_complete(folder, str(state.step))
    prune_checkpoints(folder.parent, keep_last)


def load_run_state(folder: str | Path) -> RunState:
    path = Path(folder) / RUN_STATE_NAME
    try:
        return RunState(**json.loads(path.read_text()))
    except FileNotFoundError:
        raise ResumeError(f"{path}: missing; {folder} is not a checkpoint step directory") from None
    except (json.JSONDecodeError, TypeError) as e:
        raise ResumeError(f"{path}: unreadable run state ({e})") from None


def list_step_dirs(checkpoint_root: str | Path) -> list[tuple[int, Path]]:
    root = Path(checkpoint_root)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = STEP_PATTERN.match(child.name)
        if match and child.is_dir():
            found.append((int(match.group(1)), child))
    return sorted(found)


def complete_checkpoints(checkpoint_root: str | Path) -> list[Path]:
    return [folder for _, folder in list_step_dirs(checkpoint_root) if is_complete(folder)]


def prune_checkpoints(checkpoint_root: str | Path, keep_last: int) -> None:
    """Keep the newest `keep_last` complete checkpoints; drop older ones and incomplete leftovers older
    than the newest complete one (a newer incomplete one may be a save in progress)."""
    steps = list_step_dirs(checkpoint_root)
    complete = [(step, folder) for step, folder in steps if is_complete(folder)]
    if not complete:
        return
    kept = {folder for _, folder in complete[-keep_last:]}
    newest_step = complete[-1][0]
    for step, folder in steps:
        if folder not in kept and step <= newest_step:
            shutil.rmtree(folder, ignore_errors=True)


def find_resume_checkpoint(run_dir: str | Path, resume: str,
                           checkpoint_root: str | Path | None = None) -> Path | None:
    """`resume="auto"`: the newest complete checkpoint under the run's checkpoints (None when there is
    none: a fresh start). Otherwise `resume` is a step directory, which must be complete."""
    root = Path(checkpoint_root) if checkpoint_root else Path(run_dir) / "checkpoints"
    if resume == "auto":
        complete = complete_checkpoints(root)
        return complete[-1] if complete else None
    folder = Path(resume)
    if not folder.is_dir():
        raise ResumeError(f"--resume {resume}: no such directory; pass a step directory such as "
                          f"{step_dir(root, 100)} or 'auto'")
    if not is_complete(folder):
        raise ResumeError(f"--resume {resume}: checkpoint is incomplete (no {COMPLETE_NAME} marker; the save "
                          f"was interrupted); choose an older step or 'auto'")
    return folder


def hf_export_dir(run_dir: str | Path, step: int) -> Path:
    return Path(run_dir) / HF_EXPORT_DIR / f"step_{step:06d}"


def mark_complete(folder: str | Path, note: str = "") -> None:
    """Write the COMPLETE marker: the driver calls it on an HF export folder once the exporter returns."""
    write_atomic(Path(folder) / COMPLETE_NAME, f"{note}\n")


def latest_hf_export(run_dir: str | Path) -> Path | None:
    """The newest complete (marked) HF export of a run, or None."""
    exports = [folder for _, folder in list_step_dirs(Path(run_dir) / HF_EXPORT_DIR) if is_complete(folder)]
    return exports[-1] if exports else None
