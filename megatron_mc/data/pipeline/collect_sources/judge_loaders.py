"""LiveCodeBench, TACO/APPS and CodeContests rows, and Kattis/ICPC packages, through the judge's loaders.

The loaders build the problems (tests, limits, kind); the rows' solutions, which the judge does not need,
are read here: TACO/APPS `solutions` (a JSON list of Python programs) and CodeContests `solutions` /
`incorrect_solutions` ({"language": [codes], "solution": [programs]}; Python 3 and C++ kept).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from judge.loaders import load_problems
from judge.loaders.rows import read_rows
from judge.problem import ProblemError
from megatron_mc.data.pipeline.collect_sources.base import AdapterResult, record_from_loaded, reject

CODECONTESTS_LANGUAGES = {2: "cpp", 3: "python"}   # 1 is Python 2 and 4 Java: the judge runs neither


def rows_adapter(fmt: str):
    def collect(cfg) -> AdapterResult:
        path = _path(cfg)
        problems = load_problems(path, fmt)
        rows = [row for _, row in read_rows(path)]   # the loaders make one problem per row, in order
        records = []
        for problem, row in list(zip(problems, rows))[:cfg.limit]:
            record = record_from_loaded(problem, cfg.label)
            record.reference_solutions = _solutions(row.get("solutions"), fmt)
            record.incorrect_solutions = _solutions(row.get("incorrect_solutions"), fmt)
            records.append(record)
        return AdapterResult(records)
    return collect


def _solutions(value: Any, fmt: str) -> list[dict]:
    if value in (None, ""):
        return []
    if fmt == "codecontests" and isinstance(value, dict):
        pairs = zip(value.get("language") or [], value.get("solution") or [])
        return [{"language": CODECONTESTS_LANGUAGES[lang], "code": code} for lang, code in pairs
                if lang in CODECONTESTS_LANGUAGES and isinstance(code, str)]
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return []   # TACO has rows whose solutions column is not JSON; the problem itself is fine
    return [{"language": "python", "code": code} for code in value if isinstance(code, str)] \
        if isinstance(value, list) else []


def collect_kattis(cfg) -> AdapterResult:
    """One package folder (it has data/), or a folder whose subfolders are packages. A package the judge
    cannot run (interactive, say) is a rejection with the loader's reason, not the end of the collection.
    Accepted submissions (submissions/accepted/*.py|*.cpp) become reference solutions, wrong_answer ones
    incorrect solutions."""
    root = _path(cfg)
    folders = [root] if (root / "data").is_dir() else sorted(p for p in root.iterdir() if (p / "data").is_dir())
    if not folders:
        raise ProblemError(f"{root}: neither a Kattis problem package (no data/ folder) nor a folder of packages")
    result = AdapterResult()
    for folder in folders[:cfg.limit]:
        try:
            [problem] = load_problems(folder, "kattis")
        except ProblemError as e:
            reason = "interactive" if "interactive" in str(e) else "unloadable_package"
            result.rejected.append(reject(folder.name, reason, str(e)))
            continue
        record = record_from_loaded(problem, cfg.label)
        record.reference_solutions = _submissions(folder / "submissions" / "accepted")
        record.incorrect_solutions = _submissions(folder / "submissions" / "wrong_answer")
        result.records.append(record)
    return result


def _submissions(folder: Path) -> list[dict]:
    languages = {".py": "python", ".cpp": "cpp", ".cc": "cpp"}
    if not folder.is_dir():
        return []
    return [{"language": languages[p.suffix], "code": p.read_text(errors="replace")}
            for p in sorted(folder.iterdir()) if p.suffix in languages and p.is_file()]


def _path(cfg) -> Path:
    if not cfg.path:
        raise ProblemError(f"collect source {cfg.kind!r} needs a path")
    return Path(cfg.path).expanduser()
