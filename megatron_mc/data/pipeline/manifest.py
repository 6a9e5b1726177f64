"""manifest.json: per stage, counts in and out, every rejection with its reason, the config hash and time.

A stage's entry gets "running" (the hashes its checkpoints belong to) when it starts, beside what its last
finished run recorded, and is replaced by the new figures ("status": "done", the hash of its output) when it
finishes; the runner skips a done stage whose hashes still match. A run that fails thus loses nothing.
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

from megatron_mc.data.pipeline.record import Rejection
from megatron_mc.data.pipeline.jsonl import write_atomic

MANIFEST_NAME = "manifest.json"


def content_hash(value: Any) -> str:
    """A short stable hash of JSON-able data (dict key order does not matter)."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_hash(path: str | Path) -> str | None:
    path = Path(path)
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


class Manifest:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.data: dict[str, Any] = {"stages": {}}
        if self.path.is_file():
            try:
                self.data = json.loads(self.path.read_text())
            except json.JSONDecodeError:
                self.data = {"stages": {}}  # written atomically, so only a hand edit breaks it: start over
            self.data.setdefault("stages", {})

    def stage(self, name: str) -> dict[str, Any]:
        return self.data["stages"].get(name, {})

    def set(self, key: str, value: Any) -> None:
        self.data[key] = value
        self.save()

    def start_stage(self, name: str, config_hash: str, input_hash: str | None) -> None:
        entry = self.data["stages"].setdefault(name, {})
        entry["running"] = {"config_hash": config_hash, "input_hash": input_hash}
        self.save()

    def finish_stage(self, name: str, *, count_in: int, count_out: int, rejected: list[Rejection],
                     seconds: float, output_hash: str | None, report: dict[str, Any],
                     resumed: dict[str, int]) -> None:
        running = self.data["stages"][name]["running"]
        self.data["stages"][name] = {
            "status": "done",
            "config_hash": running["config_hash"],
            "input_hash": running["input_hash"],
            "in": count_in,
            "out": count_out,
            "rejected": len(rejected),
            "rejections_by_reason": dict(sorted(Counter(r.reason for r in rejected).items())),
            "rejections": [r.to_row() for r in rejected],
            "seconds": round(seconds, 3),
            "output_hash": output_hash,
            "resumed_from_checkpoints": resumed,
            "report": report,
        }
        self.save()

    def save(self) -> None:
        write_atomic(self.path, json.dumps(self.data, indent=2, ensure_ascii=False, default=str) + "\n")
