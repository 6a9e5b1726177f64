"""TACO (BAAI/TACO) and APPS (codeparrot/apps) rows: one format, read as their own grader reads it.

`input_output` is a JSON string {"inputs": [...], "outputs": [...], "fn_name"?}. Without fn_name the problem
is stdio: an input or output given as a list of lines is joined with newlines. With fn_name it is
call-based: each input is the list of arguments (-> newline-separated JSON arguments) and each output the
return value, usually wrapped in a one-element list; their grader accepts the wrapped or the bare value, so
the problem's comparison does too. TACO adds time_limit ("2 seconds") and memory_limit ("256 megabytes").
"""
from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlparse

from judge.loaders.rows import RowRef, build_problem, iso_date, json_field
from judge.problem import (
    DEFAULT_MEMORY_LIMIT_MB,
    DEFAULT_TIME_LIMIT_S,
    Comparison,
    Problem,
    ProblemError,
    TestCase,
)

_SECONDS = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(?:s|sec|secs|second|seconds)\b", re.IGNORECASE)
_MEGABYTES = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(?:mb|megabytes?)\b", re.IGNORECASE)


def _lines(value: Any, key: str, index: int, ref: RowRef) -> str:
    if isinstance(value, list) and all(isinstance(line, str) for line in value):
        return "\n".join(value)
    if isinstance(value, str):
        return value
    raise ref.error("input_output", f"{key}[{index}] must be a string or a list of lines for a stdio problem, "
                                    f"got {type(value).__name__}")


def _stdio_tests(inputs: list[Any], outputs: list[Any], ref: RowRef) -> list[TestCase]:
    return [
        TestCase(_lines(i, "inputs", n, ref), _lines(o, "outputs", n, ref))
        for n, (i, o) in enumerate(zip(inputs, outputs))
    ]


def _call_tests(inputs: list[Any], outputs: list[Any], ref: RowRef) -> list[TestCase]:
    tests = []
    for n, (arguments, result) in enumerate(zip(inputs, outputs)):
        if not isinstance(arguments, list):
            raise ref.error("input_output", f"inputs[{n}] must be the list of arguments of the call, "
                                            f"got {type(arguments).__name__}")
        tests.append(TestCase("\n".join(json.dumps(a) for a in arguments), json.dumps(result)))
    return tests


def _limit(value: Any, pattern: re.Pattern[str], default: float) -> float:
    """A limit written as text ("1 second", "256 megabytes"); unstated or unreadable ones keep the default."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    match = pattern.match(value) if isinstance(value, str) else None
    return float(match.group(1)) if match and float(match.group(1)) > 0 else default


def _platform(url: Any) -> str | None:
    host = urlparse(url).hostname if isinstance(url, str) else None
    if not host:
        return None
    parts = host.removeprefix("www.").split(".")
    return parts[-2] if len(parts) >= 2 else parts[0]


def problem_from_row(row: dict[str, Any], ref: RowRef) -> Problem:
    io = json_field(row, "input_output", ref)
    if not isinstance(io, dict):
        raise ref.error("input_output", f"expected a JSON object with inputs and outputs, got {type(io).__name__}")
    inputs, outputs = io.get("inputs"), io.get("outputs")
    if not isinstance(inputs, list) or not isinstance(outputs, list):
        raise ref.error("input_output", "needs lists 'inputs' and 'outputs'")
    if len(inputs) != len(outputs):
        raise ref.error("input_output", f"has {len(inputs)} inputs but {len(outputs)} outputs")
    fn_name = io.get("fn_name")
    call_based = bool(fn_name)
    problem_id = row.get("problem_id")
    return build_problem(
        ref,
        id=str(problem_id) if problem_id is not None else ref.fallback_id,
        kind="function" if call_based else "stdio",
        tests=(_call_tests if call_based else _stdio_tests)(inputs, outputs, ref),
        fn_name=fn_name if call_based else None,
        time_limit_s=_limit(row.get("time_limit"), _SECONDS, DEFAULT_TIME_LIMIT_S),
        memory_limit_mb=int(_limit(row.get("memory_limit"), _MEGABYTES, DEFAULT_MEMORY_LIMIT_MB)),
        comparison=Comparison(accept_unwrapped_singleton=call_based),
        metadata={
            "platform": _platform(row.get("url")) or row.get("source"),
            "source": row.get("source"),
            "url": row.get("url"),
            "difficulty": row.get("difficulty"),
            "contest_date": _date_or_none(row.get("date"), ref),
            "question_title": row.get("name") or None,
            "question_content": row.get("question"),
            "starter_code": row.get("starter_code") or "",
            "tags": row.get("tags"),
            "time_limit": row.get("time_limit"),
            "memory_limit": row.get("memory_limit"),
        },
    )


def _date_or_none(value: Any, ref: RowRef) -> str | None:
    # TACO's date column is free text scraped from many sites; only an ISO date is kept as contest_date.
    try:
        return iso_date(value, "date", ref)
    except ProblemError:
        return None
