"""What every collect adapter returns, and the conversion of a judge-loaded Problem into a ProblemRecord."""
from __future__ import annotations

import ast
import dataclasses
from dataclasses import dataclass, field

from judge.problem import Problem
from megatron_mc.data.pipeline.record import ProblemRecord, Rejection


@dataclass
class AdapterResult:
    records: list[ProblemRecord] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)


def reject(problem_id: str, reason: str, detail: str = "") -> Rejection:
    return Rejection(problem_id, "collect", reason, detail)


def record_from_loaded(problem: Problem, source: str, statement_key: str = "question_content") -> ProblemRecord:
    """A record from a problem the judge's loaders produced: their metadata names (question_content,
    contest_date, platform, difficulty, starter_code, tags) become the record's fields."""
    meta = dict(problem.metadata)
    statement = meta.pop(statement_key, None) or ""
    title = meta.get("question_title")
    annotations = {}
    tags = _tags(meta.pop("tags", None) or meta.pop("cf_tags", None))
    if tags:
        annotations["tags"] = tags
    rating = meta.pop("cf_rating", None)
    if rating:
        annotations["rating"] = rating
    if meta.get("source") not in (None, ""):
        meta["origin"] = meta.pop("source")   # the dataset's own source column (e.g. TACO's "codeforces")
    difficulty = meta.pop("difficulty", None)
    record = ProblemRecord(
        problem=dataclasses.replace(problem, metadata={}),
        source=source,
        statement=f"{title}\n\n{statement}" if title and statement and not statement.startswith(title) else statement,
        release_date=meta.pop("contest_date", None),
        platform=meta.pop("platform", None),
        difficulty=None if difficulty is None else str(difficulty),
        starter_code=meta.pop("starter_code", None) or None,
        annotations=annotations,
    )
    record.problem.metadata.update({k: v for k, v in meta.items() if v is not None})
    return record


def _tags(value) -> list[str]:
    """Tags as a list; TACO stores them as the text of a Python list ("['Math']")."""
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            value = [value]
    return [str(t) for t in value] if isinstance(value, (list, tuple)) else []
