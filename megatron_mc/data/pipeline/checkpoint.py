"""An append-only JSONL store of per-problem results, so a stage killed in the middle resumes where it was.

Each line is {"id": ..., "row": ...}, flushed as it is written. A kill can cut the last line short: such a
line is dropped (and cut off the file) when the store is opened again, so the problem is simply redone.
"""
from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable


class Checkpoint:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.done: dict[str, Any] = {}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        good_bytes = self._load()
        if self.path.exists() and self.path.stat().st_size != good_bytes:
            os.truncate(self.path, good_bytes)
        self._file = self.path.open("a", encoding="utf-8")

    def _load(self) -> int:
        if not self.path.exists():
            return 0
        good = 0
        with self.path.open("rb") as f:
            for line in f:
                try:
                    entry = json.loads(line)
                    key, row = entry["id"], entry["row"]
                except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
                    break  # the line a kill cut short, and anything after it
                if not line.endswith(b"\n"):
                    break
                self.done[key] = row
                good += len(line)
        return good

    def append(self, key: str, row: Any) -> None:
        self._file.write(json.dumps({"id": key, "row": row}, ensure_ascii=False) + "\n")
        self._file.flush()
        self.done[key] = row

    def close(self) -> None:
        self._file.close()

    def __len__(self) -> int:
        return len(self.done)


async def checkpoint_as_completed(jobs: Iterable[Awaitable[tuple[str, Any]]], checkpoint: Checkpoint,
                                  progress: Callable, desc: str,
                                  to_row: Callable[[Any], Any] = lambda value: value) -> dict[str, Any]:
    """Run `jobs` (each answering (id, value)) concurrently; record each value in `checkpoint` as it
    finishes (as `to_row(value)`), under a progress bar. On a failure the others are cancelled and the
    error raised: what finished is already checkpointed, so a rerun does only the rest."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    results: dict[str, Any] = {}
    try:
        for finished in progress(asyncio.as_completed(tasks), total=len(tasks), desc=desc):
            key, value = await finished
            checkpoint.append(key, to_row(value))
            results[key] = value
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return results
