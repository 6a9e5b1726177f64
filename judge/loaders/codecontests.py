"""DeepMind CodeContests rows (deepmind/code_contests), as the Hugging Face dump stores contest_problem.proto.

public_tests, private_tests and generated_tests are each {"input": [...], "output": [...]}; the tests are
all three in that order (metadata counts each group, so an evaluation can use the public ones only).
source and difficulty are the proto's enums, stored as numbers (names are accepted too); time_limit is a
Duration {"seconds", "nanos"}; memory_limit_bytes is 0 when unknown.
"""
from __future__ import annotations

from typing import Any

from judge.loaders.rows import RowRef, build_problem, required
from judge.problem import DEFAULT_MEMORY_LIMIT_MB, DEFAULT_TIME_LIMIT_S, Problem, TestCase

# contest_problem.proto: ContestProblem.Source (5 is reserved) and ContestProblem.Difficulty (18 is unused).
SOURCES = {0: "UNKNOWN_SOURCE", 1: "CODECHEF", 2: "CODEFORCES", 3: "HACKEREARTH", 4: "CODEJAM", 6: "ATCODER",
           7: "AIZU"}
DIFFICULTIES = {
    0: "UNKNOWN_DIFFICULTY", 1: "EASY", 2: "MEDIUM", 3: "HARD", 4: "HARDER", 5: "HARDEST", 6: "EXTERNAL",
    **{number: letter for number, letter in zip([*range(7, 18), *range(19, 30)], "ABCDEFGHIJKLMNOPQRSTUV")},
}
TEST_GROUPS = ("public_tests", "private_tests", "generated_tests")


def _enum_name(value: Any, names: dict[int, str], key: str, ref: RowRef) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and value in names.values():
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value in names:
        return names[value]
    raise ref.error(key, f"unknown value {value!r}; expected one of {sorted(names)} or {sorted(names.values())}")


def _tests(row: dict[str, Any], key: str, ref: RowRef) -> list[TestCase]:
    group = row.get(key)
    if group is None:
        return []
    if not isinstance(group, dict):
        raise ref.error(key, f"expected {{'input': [...], 'output': [...]}}, got {type(group).__name__}")
    inputs, outputs = group.get("input") or [], group.get("output") or []
    if not isinstance(inputs, list) or not isinstance(outputs, list):
        raise ref.error(key, "'input' and 'output' must be lists of strings")
    if len(inputs) != len(outputs):
        raise ref.error(key, f"has {len(inputs)} inputs but {len(outputs)} outputs")
    for index, (i, o) in enumerate(zip(inputs, outputs)):
        if not isinstance(i, str) or not isinstance(o, str):
            raise ref.error(key, f"test {index}: input and output must be strings")
    return [TestCase(i, o) for i, o in zip(inputs, outputs)]


def _time_limit_s(row: dict[str, Any], ref: RowRef) -> float:
    duration = row.get("time_limit")
    if duration is None:
        return DEFAULT_TIME_LIMIT_S
    if not isinstance(duration, dict):
        raise ref.error("time_limit", f"expected a Duration {{'seconds', 'nanos'}}, got {duration!r}")
    seconds = (duration.get("seconds") or 0) + (duration.get("nanos") or 0) / 1e9
    return seconds if seconds > 0 else DEFAULT_TIME_LIMIT_S


def _memory_limit_mb(row: dict[str, Any]) -> int:
    limit_bytes = row.get("memory_limit_bytes") or 0
    return max(1, limit_bytes // (1 << 20)) if limit_bytes > 0 else DEFAULT_MEMORY_LIMIT_MB


def problem_from_row(row: dict[str, Any], ref: RowRef) -> Problem:
    for key in ("input_file", "output_file"):
        if row.get(key):
            raise ref.error(key, f"the problem uses the file {row[key]!r}, but the judge connects programs to "
                                 "stdin/stdout only; leave such rows out of the dataset")
    groups = {key: _tests(row, key, ref) for key in TEST_GROUPS}
    source = _enum_name(row.get("source"), SOURCES, "source", ref)
    return build_problem(
        ref,
        id=str(required(row, "name", ref)),
        kind="stdio",
        tests=[test for key in TEST_GROUPS for test in groups[key]],
        time_limit_s=_time_limit_s(row, ref),
        memory_limit_mb=_memory_limit_mb(row),
        metadata={
            "platform": source.lower() if source and source != "UNKNOWN_SOURCE" else None,
            "source": source,
            "difficulty": _enum_name(row.get("difficulty"), DIFFICULTIES, "difficulty", ref),
            "cf_rating": row.get("cf_rating") or None,
            "cf_contest_id": row.get("cf_contest_id") or None,
            "cf_index": row.get("cf_index") or None,
            "cf_tags": row.get("cf_tags") or [],
            "contest_date": None,
            "question_title": row.get("name"),
            "question_content": row.get("description"),
            "starter_code": "",
            **{key: len(groups[key]) for key in TEST_GROUPS},
        },
    )
