"""The records every stage of the dataset pipeline (mc-data) reads and writes.

A row of any stage's JSONL output is `ProblemRecord.to_row()`: the judge's normalized problem
(judge/problem.py) with the pipeline's fields (judge.problem.DATASET_KEYS) at the top level, so
`judge.loaders.load_problems(path)` and `mc-train` (data.source: file) read it directly.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from judge.problem import DATASET_KEYS, Problem, ProblemError

STAGES = ("collect", "process", "filter", "verify")


@dataclass
class ProblemRecord:
    problem: Problem                        # what the judge runs: tests, limits, kind, fn_name, checker, comparison
    source: str                             # adapter that produced it: "livecodebench", "taco", "humaneval", "bundled", ...
    statement: str = ""
    release_date: str | None = None         # ISO date "YYYY-MM-DD" (from_row normalizes what parse_date reads)
    platform: str | None = None             # "codeforces", "atcoder", "leetcode", "kattis", ...
    difficulty: str | None = None           # the source's own label ("easy"/"medium"/"hard", or a rating as text)
    starter_code: str | None = None
    reference_solutions: list[dict] = field(default_factory=list)   # {"language": "python"|"cpp", "code": str}
    incorrect_solutions: list[dict] = field(default_factory=list)   # known-wrong ones, same shape
    annotations: dict = field(default_factory=dict)  # what stages add: "format_instruction", "tags", "rating",
                                                     # "difficulty_scores", "weighted_score", ...

    @property
    def id(self) -> str:
        return self.problem.id

    def to_row(self) -> dict[str, Any]:
        """The problem's JSON form (its metadata without copies of the pipeline's fields) plus those fields."""
        row = self.problem.to_dict()
        row["metadata"] = {k: v for k, v in (row.get("metadata") or {}).items() if k not in DATASET_KEYS}
        for key in DATASET_KEYS:
            row[key] = getattr(self, key)
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any], where: str) -> ProblemRecord:
        """A record from a JSONL row; every error is a ProblemError naming `where` ("FILE, row N")."""
        if not isinstance(row, dict):
            raise ProblemError(f"{where}: a row must be a JSON object, got {type(row).__name__}")
        for key in ("time_limit_s", "memory_limit_mb"):   # the judge's float() error would not name the key
            value = row.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ProblemError(f"{where}: {key!r} must be a number, got {value!r}")
        problem = Problem.from_dict(row, where=where)
        for key in DATASET_KEYS:          # kept on the record, not twice in the problem's metadata
            problem.metadata.pop(key, None)
        source = row.get("source") or "jsonl"
        try:
            record = cls(
                problem=problem,
                source=_text(row, "source", where, default=source),
                statement=_text(row, "statement", where, default="") or "",
                release_date=_date(row, "release_date", where),
                platform=_text(row, "platform", where),
                difficulty=None if row.get("difficulty") is None else str(row["difficulty"]),
                starter_code=_text(row, "starter_code", where),
                reference_solutions=_solutions(row, "reference_solutions", where),
                incorrect_solutions=_solutions(row, "incorrect_solutions", where),
                annotations=dict(row.get("annotations") or {}),
            )
        except (TypeError, ValueError) as e:
            raise ProblemError(f"{where}: problem {problem.id!r}: {e}") from None
        return record


def _text(row: dict, key: str, where: str, default: str | None = None) -> str | None:
    value = row.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ProblemError(f"{where}: {key!r} must be a string, got {type(value).__name__}")
    return value


_YMD = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\S.*")


def parse_date(value: Any) -> date:
    """A date from "YYYY-MM-DD" (also "2025-1-5" and the basic "20250105") or an ISO datetime with a time part
    ("2024-08-03T00:00:00", as LiveCodeBench has; "Z" allowed). Anything else ("2025", "March 2019") is a
    ValueError: compared as text, such values would fall on the wrong side of a date."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    text = value.strip() if isinstance(value, str) else None
    try:
        if text is not None:
            if match := _YMD.fullmatch(text):
                return date(*map(int, match.groups()))
            if re.fullmatch(r"\d{8}", text):
                return date.fromisoformat(text)
            if _DATETIME.fullmatch(text):
                return datetime.fromisoformat(text.replace("Z", "+00:00")).date()
    except ValueError:
        pass
    raise ValueError(f"expected a date such as 2024-05-31 (or 2024-08-03T00:00:00), got {value!r}")


def _date(row: dict, key: str, where: str) -> str | None:
    """The row's date as "YYYY-MM-DD"; null (or absent) stays None: some sources have no dates."""
    value = row.get(key)
    if value is None:
        return None
    try:
        return parse_date(value).isoformat()
    except ValueError as e:
        raise ProblemError(f"{where}: {key!r}: {e}") from None


def _solutions(row: dict, key: str, where: str) -> list[dict]:
    value = row.get(key) or []
    if not isinstance(value, list):
        raise ProblemError(f"{where}: {key!r} must be a list of {{'language', 'code'}} objects")
    out = []
    for i, s in enumerate(value):
        if not isinstance(s, dict) or not isinstance(s.get("code"), str):
            raise ProblemError(f"{where}: {key}[{i}] must be an object with 'language' and 'code'")
        out.append({"language": str(s.get("language") or "python"), "code": s["code"]})
    return out


@dataclass(frozen=True)
class Rejection:
    id: str
    stage: str        # "collect" | "process" | "filter" | "verify"
    reason: str       # short stable code: "missing_output_section", "near_duplicate", "too_few_tests", ...
    detail: str = ""  # human-readable specifics

    def to_row(self) -> dict[str, str]:
        return {"id": self.id, "stage": self.stage, "reason": self.reason, "detail": self.detail}


@dataclass
class StageOutput:
    kept: list[ProblemRecord]
    rejected: list[Rejection]
    report: dict = field(default_factory=dict)   # stage-specific figures that go into the manifest
