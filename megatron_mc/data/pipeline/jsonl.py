"""Reading and writing the pipeline's JSONL files: errors name the file and row; writes are atomic."""
from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from judge.problem import ProblemError
from megatron_mc.data.pipeline.record import ProblemRecord
from megatron_mc.run_state import write_atomic as _fsynced_write


def iter_rows(path: str | Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, row) for each non-blank line; `where` is "FILE, row N" (N: the line number). A line that is
    not a JSON object raises a ProblemError naming the file and row."""
    path = Path(path)
    if not path.is_file():
        raise ProblemError(f"{path}: no such JSONL file")
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}, row {line_no}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ProblemError(f"{where}: not valid JSON ({e})") from None
            if not isinstance(row, dict):
                raise ProblemError(f"{where}: a row must be a JSON object, got {type(row).__name__}")
            yield where, row


def read_records(path: str | Path) -> list[ProblemRecord]:
    return [ProblemRecord.from_row(row, where) for where, row in iter_rows(path)]


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """run_state.write_atomic (temporary file, fsync, rename), then the mode a plain open() would give: the
    temporary file is created 0600, which would keep the run's outputs from the rest of the group."""
    _fsynced_write(path, data)
    os.chmod(path, 0o666 & ~_umask())


def _umask() -> int:
    try:   # read without changing it (os.umask sets it, racing other threads)
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_rows(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    """All rows at once, through a temporary file in the same folder: a crash leaves the old file whole."""
    write_atomic(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def write_records(path: str | Path, records: Iterable[ProblemRecord]) -> None:
    write_rows(path, (record.to_row() for record in records))
