"""Loading problems from any supported format into the normalized schema (judge/problem.py).

    load_problems("problems.jsonl")                              normalized problems, one per line
    load_problems("one_problem.json")                            one normalized problem
    load_problems("contests/hello")                              a Kattis/ICPC package folder
    load_problems("test6.jsonl", fmt="livecodebench")            dataset rows (.jsonl, or a .json array)

Each problem's metadata["dataset"] records the format it came from, for evaluation breakdowns.
"""
from __future__ import annotations

from pathlib import Path

from judge.loaders import codecontests, kattis, livecodebench, taco
from judge.loaders.rows import RowParser, RowRef, parse_rows
from judge.problem import Problem, ProblemError, load_problem_file, load_problems_jsonl

ROW_FORMATS: dict[str, RowParser] = {
    "livecodebench": livecodebench.problem_from_row,
    "taco": taco.problem_from_row,
    "apps": taco.problem_from_row,
    "codecontests": codecontests.problem_from_row,
}
FORMATS = ("normalized", *ROW_FORMATS, "kattis")

__all__ = ["FORMATS", "ROW_FORMATS", "RowRef", "load_problems"]


def _normalized(path: Path) -> list[Problem]:
    if path.suffix == ".json":
        return [load_problem_file(path)]
    if path.suffix == ".jsonl":
        return load_problems_jsonl(path)
    raise ProblemError(f"{path}: normalized problems come as a .json problem or a .jsonl of problems; "
                       f"for dataset rows pass fmt, one of {', '.join(ROW_FORMATS)}")


def load_problems(path: str | Path, fmt: str | None = None) -> list[Problem]:
    """The problems at `path`; `fmt` (one of FORMATS) is needed for dataset rows, else told by the path."""
    path = Path(path)
    if fmt is not None and fmt not in FORMATS:
        raise ProblemError(f"unknown problem format {fmt!r}; valid formats: {', '.join(FORMATS)}")
    if not path.exists():
        raise ProblemError(f"{path}: no such file or folder")
    if path.is_dir():
        if fmt not in (None, "kattis"):
            raise ProblemError(f"{path}: is a folder, which only the 'kattis' format reads; format {fmt!r} "
                               "reads a .jsonl or .json file of rows")
        fmt = "kattis"
        problems = [kattis.load_package(path)]
    elif fmt == "kattis":
        raise ProblemError(f"{path}: the 'kattis' format reads a problem package folder, not a file")
    elif fmt in ROW_FORMATS:
        problems = parse_rows(path, ROW_FORMATS[fmt])
    else:
        fmt = "normalized"
        problems = _normalized(path)
    for problem in problems:
        problem.metadata.setdefault("dataset", fmt)
    return problems
