"""Reading dataset rows (JSONL, or a JSON array) and the field parsing every row format shares.

Every error names the file, the row and the key, so a bad row in a 30 000-row dump can be found and fixed.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from judge.problem import Problem, ProblemError


@dataclass(frozen=True)
class RowRef:
    """Where a row came from: a file (or a dataset name) and its 1-based row number."""

    source: str
    number: int

    def __str__(self) -> str:
        return f"{self.source}, row {self.number}"

    @property
    def fallback_id(self) -> str:
        """An id for rows whose format has none: the source's name and the row number."""
        return f"{Path(self.source).stem}-{self.number}"

    def error(self, key: str, message: str) -> ProblemError:
        return ProblemError(f"{self}: key {key!r}: {message}")


RowParser = Callable[[dict[str, Any], RowRef], Problem]


def read_rows(path: str | Path) -> Iterator[tuple[RowRef, dict[str, Any]]]:
    """The rows of a .jsonl file (row number = line number) or of a .json file holding an array of rows."""
    path = Path(path)
    if not path.is_file():
        raise ProblemError(f"{path}: no such rows file")
    if path.suffix == ".json":
        try:
            rows = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ProblemError(f"{path}: not valid JSON ({e})") from None
        if not isinstance(rows, list):
            raise ProblemError(f"{path}: a .json rows file must hold an array of rows, got {type(rows).__name__}")
        numbered: Iterator[tuple[int, Any]] = enumerate(rows, 1)
    else:
        numbered = jsonl_rows(path)
    for number, row in numbered:
        ref = RowRef(str(path), number)
        if not isinstance(row, dict):
            raise ProblemError(f"{ref}: a row must be a JSON object, got {type(row).__name__}")
        yield ref, row


def jsonl_rows(path: str | Path, error: type[Exception] = ProblemError) -> Iterator[tuple[int, Any]]:
    """(row number = line number, parsed row) of a .jsonl file, blank lines skipped; a line that is not JSON
    raises `error` naming the file and row."""
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as e:
                raise error(f"{path}, row {number}: not valid JSON ({e})") from None


def parse_rows(path: str | Path, parser: RowParser) -> list[Problem]:
    return [parser(row, ref) for ref, row in read_rows(path)]


def required(row: dict[str, Any], key: str, ref: RowRef) -> Any:
    if key not in row or row[key] is None:
        raise ref.error(key, f"missing; this format needs it (keys present: {sorted(row)})")
    return row[key]


def json_field(row: dict[str, Any], key: str, ref: RowRef) -> Any:
    """A field the dataset stores as a JSON string (an already-decoded value is taken as it is)."""
    value = required(row, key, ref)
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as e:
        raise ref.error(key, f"not a valid JSON string ({e})") from None


def iso_date(value: Any, key: str, ref: RowRef) -> str | None:
    """A date as "YYYY-MM-DD" from an ISO date/datetime string or epoch milliseconds (pandas' JSON dates)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ref.error(key, f"expected a date, got {value!r}")
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value / 1000, tz=timezone.utc).date().isoformat()
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip().replace("Z", "+00:00")).date().isoformat()
        except ValueError:
            pass
    raise ref.error(key, f"expected an ISO date such as 2024-05-31, got {value!r}")


def build_problem(ref: RowRef, **fields: Any) -> Problem:
    """A Problem whose schema errors (no tests, bad limits, ...) name the row they came from."""
    try:
        return Problem(**fields)
    except ProblemError as e:
        raise ProblemError(f"{ref}: {e}") from None
