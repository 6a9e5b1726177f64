"""Running one stage: its context (folder, workers, progress bar, log, judge pool, engine URL, checkpoints)
and the runner that skips a finished stage and resumes an interrupted one.

Layout of a run folder:  OUT/manifest.json, OUT/<stage>/kept.jsonl, OUT/<stage>/rejected.jsonl,
OUT/<stage>/<name>.checkpoint.jsonl (per-problem work of an unfinished stage).
A stage is skipped when the manifest says it is done with the same config hash and input hash and its
kept.jsonl still has the hash recorded then. A stage that was started with the same hashes but not finished
keeps its checkpoints (the stage's own code skips what they hold); checkpoints of other hashes are removed.
The last finished run's outputs stay until the new run replaces them (atomically), so a failure loses nothing.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from megatron_mc.data.pipeline.checkpoint import Checkpoint
from megatron_mc.data.pipeline.jsonl import read_records, write_records, write_rows
from megatron_mc.data.pipeline.manifest import Manifest, file_hash
from megatron_mc.data.pipeline.record import ProblemRecord, StageOutput

KEPT_NAME = "kept.jsonl"
REJECTED_NAME = "rejected.jsonl"


class Resources:
    """What stages of one run share, created on first use: the judge pool and the engine's base URL."""

    def __init__(self, workers: int, engine_url: str | None = None,
                 start_engine: Callable[[], str] | None = None, cpus: str | None = "auto") -> None:
        self.workers = workers
        self.cpus = cpus  # where the judge workers run (judge/affinity.py)
        self._engine_url = engine_url
        self._start_engine = start_engine
        self._pool = None

    def judge_pool(self):
        if self._pool is None:
            from judge.pool import JudgePool
            self._pool = JudgePool(workers=self.workers, cpus=self.cpus)
        return self._pool

    def engine_url(self) -> str | None:
        if self._engine_url is None and self._start_engine is not None:
            self._engine_url = self._start_engine()
            self._start_engine = None
        return self._engine_url

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None


@dataclass
class StageContext:
    out_dir: Path                      # the stage's folder
    workers: int = 2
    quiet: bool = False                # no progress bars or log lines (tests)
    resources: Resources | None = None
    _checkpoints: dict[str, Checkpoint] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.resources is None:
            self.resources = Resources(self.workers)

    @property
    def engine_url(self) -> str | None:
        """An OpenAI-/SGLang-compatible base URL when the run has one (the embedded engine starts on first use)."""
        return self.resources.engine_url()

    def judge_pool(self):
        return self.resources.judge_pool()

    def progress(self, iterable: Iterable, total: int | None = None, desc: str = "") -> Iterable:
        return tqdm(iterable, total=total, desc=desc, disable=self.quiet, file=sys.stderr, leave=False,
                    dynamic_ncols=True)

    def log(self, msg: str) -> None:
        if not self.quiet:
            print(f"mc-data: {msg}", file=sys.stderr, flush=True)

    def checkpoint(self, name: str) -> Checkpoint:
        """The append-only store `name` of this stage; what it holds survives a kill."""
        if name not in self._checkpoints:
            self._checkpoints[name] = Checkpoint(self.out_dir / f"{name}.checkpoint.jsonl")
        return self._checkpoints[name]

    def close_checkpoints(self) -> dict[str, int]:
        sizes = {name: len(cp) for name, cp in self._checkpoints.items()}
        for cp in self._checkpoints.values():
            cp.close()
        self._checkpoints.clear()
        return sizes


StageFunction = Callable[[StageContext], StageOutput]


def run_stage(name: str, run: StageFunction, *, run_dir: Path, manifest: Manifest, config_hash: str,
              input_hash: str | None, count_in: int | None, workers: int, quiet: bool,
              resources: Resources) -> list[ProblemRecord]:
    """Run (or skip, or resume) stage `name`; returns its kept records, also written to <stage>/kept.jsonl."""
    stage_dir = Path(run_dir) / name
    kept_path = stage_dir / KEPT_NAME
    entry = manifest.stage(name)
    hashes = {"config_hash": config_hash, "input_hash": input_hash}
    if entry.get("status") == "done" and all(entry.get(k) == v for k, v in hashes.items()) \
            and file_hash(kept_path) == entry.get("output_hash"):
        if not quiet:
            print(f"mc-data: {name}: done before with the same config and input; skipped", file=sys.stderr)
        return read_records(kept_path)
    resumed = entry.get("running") == hashes
    if not resumed:
        for stale in stage_dir.glob("*.checkpoint.jsonl"):  # another config's or input's work would be wrong here
            stale.unlink()
    manifest.start_stage(name, config_hash, input_hash)
    ctx = StageContext(stage_dir, workers=workers, quiet=quiet, resources=resources)
    ctx.log(f"{name}: {'resuming' if resumed else 'starting'}")
    start = time.monotonic()
    try:
        previous = _checkpoint_sizes(stage_dir) if resumed else {}
        output = run(ctx)
    finally:
        ctx.close_checkpoints()
    seconds = time.monotonic() - start
    write_records(kept_path, output.kept)
    write_rows(stage_dir / REJECTED_NAME, (r.to_row() for r in output.rejected))
    manifest.finish_stage(name, count_in=len(output.kept) + len(output.rejected) if count_in is None else count_in,
                          count_out=len(output.kept), rejected=output.rejected, seconds=seconds,
                          output_hash=file_hash(kept_path), report=output.report, resumed=previous)
    ctx.log(f"{name}: {len(output.kept)} kept, {len(output.rejected)} rejected in {seconds:.1f} s")
    return output.kept


def _checkpoint_sizes(stage_dir: Path) -> dict[str, int]:
    """Entries each checkpoint held when the stage resumed (shown in the manifest)."""
    sizes = {}
    for path in sorted(stage_dir.glob("*.checkpoint.jsonl")):
        with path.open("rb") as f:
            sizes[path.name.removesuffix(".checkpoint.jsonl")] = sum(1 for line in f if line.endswith(b"\n"))
    return sizes
