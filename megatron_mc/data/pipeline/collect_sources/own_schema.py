"""Rows in our own schema: ProblemRecord.to_row() (any stage's output), or plain normalized problems
(their metadata's question_content/contest_date/... become the record's fields); the bundled corpus; the
embedded default's tiny tasks."""
from __future__ import annotations

from pathlib import Path

from judge.problem import DATASET_KEYS, Problem, ProblemError
from megatron_mc.data.pipeline.collect_sources.base import AdapterResult, record_from_loaded
from megatron_mc.data.pipeline.jsonl import iter_rows
from megatron_mc.data.pipeline.record import ProblemRecord

CORPUS_DIR = Path(__file__).resolve().parent.parent / "corpus"
BUNDLED_PROBLEMS = CORPUS_DIR / "problems.jsonl"


def collect_jsonl(cfg) -> AdapterResult:
    if not cfg.path:
        raise ProblemError("collect source 'jsonl' needs a path")
    return _from_file(Path(cfg.path).expanduser(), cfg)


def collect_bundled(cfg) -> AdapterResult:
    return _from_file(Path(cfg.path) if cfg.path else BUNDLED_PROBLEMS, cfg)


def collect_tiny_tasks(cfg) -> AdapterResult:
    from megatron_mc.data import tiny_tasks

    records = []
    for problem in tiny_tasks.make_problems("train")[:cfg.limit]:
        record = record_from_loaded(problem, cfg.label)
        record.reference_solutions = [{"language": "python",
                                       "code": record.problem.metadata.pop("reference_solution")}]
        records.append(record)
    return AdapterResult(records)


def _from_file(path: Path, cfg) -> AdapterResult:
    records = []
    for where, row in iter_rows(path):
        if cfg.limit is not None and len(records) >= cfg.limit:
            break
        if any(key in row for key in DATASET_KEYS):
            record = ProblemRecord.from_row({**row, "source": row.get("source") or cfg.label}, where)
        else:
            record = record_from_loaded(Problem.from_dict(row, where=where), cfg.label)
            solution = record.problem.metadata.pop("reference_solution", None)
            if solution:
                record.reference_solutions = [{"language": "python", "code": solution}]
        records.append(record)
    return AdapterResult(records)
