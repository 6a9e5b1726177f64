"""Codeforces-style rows (as in open-r1/codeforces and similar dumps), one JSON object per line:

  id | contest_id + index     the problem's id ("1843A"); one of them is required
  title, description, input_format, output_format, note     statement parts (description required)
  official_tests | tests     [{"input", "output"}, ...]; else examples (the statement's samples)
  examples                   [{"input", "output"}, ...]: public tests, placed first
  rating (int), tags (list of str), time_limit (seconds; "2 seconds", "2s"), memory_limit (MB; "256 megabytes")
  contest_start (epoch seconds) | date (ISO)               the release date
  interaction_format (non-empty: an interactive problem), generated_checker (a testlib checker, C++)
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from judge.loaders.rows import RowRef, iso_date, read_rows, required
from judge.problem import Checker, Problem, ProblemError, TestCase
from megatron_mc.data.pipeline.collect_sources.base import AdapterResult, reject
from megatron_mc.data.pipeline.record import ProblemRecord


def collect_codeforces(cfg) -> AdapterResult:
    if not cfg.path:
        raise ProblemError("collect source 'codeforces' needs a path")
    result = AdapterResult()
    for ref, row in read_rows(Path(cfg.path).expanduser()):
        if cfg.limit is not None and len(result.records) >= cfg.limit:
            break
        if row.get("interaction_format"):
            result.rejected.append(reject(_id(row, ref), "interactive", f"{ref}: has an interaction format"))
            continue
        result.records.append(_record(row, ref, cfg.label))
    return result


def _id(row: dict[str, Any], ref: RowRef) -> str:
    if row.get("id"):
        return str(row["id"])
    if row.get("contest_id") is not None and row.get("index"):
        return f"{row['contest_id']}{row['index']}"
    raise ref.error("id", "missing; give id, or contest_id and index")


def _tests(row: dict[str, Any], key: str, ref: RowRef) -> list[TestCase]:
    value = row.get(key) or []
    if not isinstance(value, list):
        raise ref.error(key, f"expected a list of {{'input', 'output'}} objects, got {type(value).__name__}")
    tests = []
    for i, t in enumerate(value):
        if not isinstance(t, dict) or not isinstance(t.get("input"), str) or not isinstance(t.get("output"), str):
            raise ref.error(key, f"test {i} must be an object with string 'input' and 'output'")
        tests.append(TestCase(t["input"], t["output"]))
    return tests


def _statement(row: dict[str, Any], ref: RowRef) -> str:
    parts = [row.get("title") or "", str(required(row, "description", ref))]
    for heading, key in (("Input", "input_format"), ("Output", "output_format"), ("Note", "note")):
        if row.get(key):
            parts.append(f"{heading}\n{row[key]}")
    return "\n\n".join(p for p in parts if p)


def _date(row: dict[str, Any], ref: RowRef) -> str | None:
    if isinstance(row.get("contest_start"), (int, float)) and not isinstance(row["contest_start"], bool):
        return datetime.fromtimestamp(row["contest_start"], tz=timezone.utc).date().isoformat()
    return iso_date(row.get("date"), "date", ref)


def _limit(row: dict[str, Any], key: str, default: float, ref: RowRef, units: tuple[str, ...]) -> float:
    """A number, or text such as "2 seconds", "2s", "256 megabytes" (the unit as Codeforces writes it)."""
    value = row.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(?:" + "|".join(units) + r")?\s*", value, re.IGNORECASE)
        if match:
            return float(match.group(1))
    raise ref.error(key, f"expected a number (or e.g. '2 {units[0]}'), got {value!r}")


def _record(row: dict[str, Any], ref: RowRef, source: str) -> ProblemRecord:
    problem_id = _id(row, ref)
    public = _tests(row, "examples", ref)
    hidden = _tests(row, "official_tests", ref) or _tests(row, "tests", ref)
    tests = public + [t for t in hidden if t not in public]
    tags = row.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ref.error("tags", "expected a list of strings")
    rating = row.get("rating")
    if rating is not None and (isinstance(rating, bool) or not isinstance(rating, (int, float))):
        raise ref.error("rating", f"expected a number, got {rating!r}")
    checker = row.get("generated_checker")
    time_limit_s = _limit(row, "time_limit", 2.0, ref, ("seconds", "second", "s"))
    memory_limit_mb = int(_limit(row, "memory_limit", 256, ref, ("megabytes", "mb")))
    try:
        problem = Problem(
            id=problem_id, kind="stdio", tests=tests,
            time_limit_s=time_limit_s, memory_limit_mb=memory_limit_mb,
            checker=Checker("cpp", checker, "testlib") if checker else None,
            metadata={"public_tests": len(public), "contest_id": row.get("contest_id")},
        )
    except (ProblemError, TypeError, ValueError) as e:
        raise ProblemError(f"{ref}: {e}") from None
    return ProblemRecord(
        problem=problem, source=source, statement=_statement(row, ref), release_date=_date(row, ref),
        platform=row.get("platform") or "codeforces",
        difficulty=None if rating is None else str(int(rating)),
        annotations={k: v for k, v in (("tags", tags), ("rating", rating)) if v},
    )
