"""The normalized problem schema every loader produces and the judge consumes.

JSON form:
  {"id": str, "kind": "stdio" | "function", "tests": [{"input": str, "output": str}, ...],
   "fn_name": str | null, "time_limit_s": float, "memory_limit_mb": int,
   "cpp_std": null | "c++17" | "gnu++17" | "c++20" | "gnu++20",   # C++ submissions; null: the judge's default
   "checker": null | {"language": "python" | "cpp", "source": str, "convention": "kattis" | "testlib"},
   "interactor": null | {"language": "python" | "cpp", "source": str, "convention": "kattis" | "testlib"},
   "comparison": {"abs_tol": float, "rel_tol": float, "case_insensitive": bool, "unordered": bool,
                  "accept_unwrapped_singleton": bool},   # every key optional
   "metadata": {...}}   # platform, difficulty, contest_date, starter_code, ... (free, never judged)

Rows written by the dataset pipeline (megatron_mc/data/pipeline, mc-data) carry its fields beside these at
the top level (DATASET_KEYS: source, release_date, platform, difficulty, statement, starter_code,
reference_solutions, incorrect_solutions, annotations); the judge never judges them and keeps them in
metadata, so a pipeline's train.jsonl loads as normalized problems.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

KINDS = ("stdio", "function")
LANGUAGES = ("python", "cpp")
CPP_STANDARDS = ("c++17", "gnu++17", "c++20", "gnu++20")  # each is the g++ -std= value it names
CHECKER_CONVENTIONS = ("kattis", "testlib")
INTERACTOR_CONVENTIONS = ("kattis", "testlib")
DATASET_KEYS = ("source", "release_date", "platform", "difficulty", "statement", "starter_code",
                "reference_solutions", "incorrect_solutions", "annotations")
DEFAULT_TIME_LIMIT_S = 6.0
DEFAULT_MEMORY_LIMIT_MB = 1024


class ProblemError(ValueError):
    """A problem (file, row or folder) that does not follow the schema; the message says where."""


@dataclass(frozen=True)
class TestCase:
    input: str
    output: str

    __test__ = False  # not a pytest class


@dataclass(frozen=True)
class Comparison:
    """How an output is compared with the expected one (function results use only the tolerances and the
    singleton rule; case and line order concern stdio)."""

    abs_tol: float = 1e-6
    rel_tol: float = 1e-6
    case_insensitive: bool = False
    unordered: bool = False
    # TACO/APPS call-based answers: an expected one-element list [x] also accepts x, as their grader does.
    accept_unwrapped_singleton: bool = False


def check_cpp_standard(standard: str, where: str) -> str:
    """`standard` when the judge compiles with it; else a ProblemError naming `where` it came from."""
    if standard not in CPP_STANDARDS:
        raise ProblemError(f"{where}: unknown C++ standard {standard!r}; use one of {', '.join(CPP_STANDARDS)}")
    return standard


@dataclass(frozen=True)
class Checker:
    """A custom output validator, run in one of two command-line conventions (judge/checker.py):
      kattis   `checker INPUT_FILE ANSWER_FILE FEEDBACK_DIR < contestant_output`, exit 42 accepted, 43 wrong;
      testlib  `checker INPUT_FILE OUTPUT_FILE ANSWER_FILE`, exit 0 accepted, 1 wrong, 2 presentation error,
               7 partial points (both wrong for the judge), 3 the checker's own failure."""

    language: str
    source: str
    convention: str = "kattis"


@dataclass(frozen=True)
class Interactor:
    """The program a stdio submission talks to in an interactive problem (judge/interactive.py): its stdout
    is the submission's stdin and the submission's stdout is its stdin. Two command-line conventions:
      kattis   `interactor INPUT_FILE ANSWER_FILE FEEDBACK_DIR`, exit 42 accepted, 43 wrong answer;
      testlib  `interactor INPUT_FILE OUTPUT_FILE [ANSWER_FILE]` (testlib.h's registerInteraction: OUTPUT_FILE is
               where it may write for a checker, unused here), exit 0 accepted, 1/2/4/7/8 wrong answer.
    Any other exit, a signal or a hang is the interactor's failure (SE)."""

    language: str
    source: str
    convention: str = "kattis"


@dataclass
class Problem:
    id: str
    kind: str
    tests: list[TestCase]
    fn_name: str | None = None
    time_limit_s: float = DEFAULT_TIME_LIMIT_S
    memory_limit_mb: int = DEFAULT_MEMORY_LIMIT_MB
    checker: Checker | None = None
    interactor: Interactor | None = None
    cpp_std: str | None = None
    comparison: Comparison = field(default_factory=Comparison)
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = f"problem {self.id!r}"
        if not isinstance(self.id, str) or not self.id:
            raise ProblemError(f"problem id must be a non-empty string, got {self.id!r}")
        if self.kind not in KINDS:
            raise ProblemError(f"{where}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "function" and not self.fn_name:
            raise ProblemError(f"{where}: kind 'function' needs fn_name")
        if not self.tests:
            raise ProblemError(f"{where}: has no tests")
        if not (self.time_limit_s > 0):
            raise ProblemError(f"{where}: time_limit_s must be > 0, got {self.time_limit_s!r}")
        if not (self.memory_limit_mb > 0):
            raise ProblemError(f"{where}: memory_limit_mb must be > 0, got {self.memory_limit_mb!r}")
        if self.checker is not None and self.checker.language not in LANGUAGES:
            raise ProblemError(f"{where}: checker language must be one of {LANGUAGES}")
        if self.checker is not None and self.checker.convention not in CHECKER_CONVENTIONS:
            raise ProblemError(f"{where}: checker convention must be one of {CHECKER_CONVENTIONS}, "
                               f"got {self.checker.convention!r}")
        if self.cpp_std is not None:
            check_cpp_standard(self.cpp_std, f"{where}: cpp_std")
        if self.interactor is not None:
            self._check_interactor(where)

    def _check_interactor(self, where: str) -> None:
        interactor = self.interactor
        if not isinstance(interactor, Interactor):
            raise ProblemError(f"{where}: interactor must be an Interactor, got {type(interactor).__name__}")
        if interactor.language not in LANGUAGES:
            raise ProblemError(f"{where}: interactor language must be one of {LANGUAGES}, got {interactor.language!r}")
        if not isinstance(interactor.source, str) or not interactor.source.strip():
            raise ProblemError(f"{where}: interactor source must be a non-empty string")
        if interactor.convention not in INTERACTOR_CONVENTIONS:
            raise ProblemError(f"{where}: interactor convention must be one of {INTERACTOR_CONVENTIONS}, "
                               f"got {interactor.convention!r}")
        if self.kind != "stdio":
            raise ProblemError(f"{where}: an interactive problem must be of kind 'stdio' (function-call problems "
                               "cannot be interactive)")
        if self.checker is not None:
            raise ProblemError(f"{where}: an interactive problem's interactor gives the verdict; remove 'checker'")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, row: dict[str, Any], where: str = "") -> Problem:
        """Build a problem from its JSON form; `where` (file:line) prefixes every error."""
        prefix = f"{where}: " if where else ""
        if not isinstance(row, dict):
            raise ProblemError(f"{prefix}a problem must be a JSON object, got {type(row).__name__}")
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(row) - known - set(DATASET_KEYS))
        if unknown:
            raise ProblemError(f"{prefix}unknown problem keys {unknown}; valid keys: {sorted(known)} "
                               f"(and the dataset pipeline's {', '.join(DATASET_KEYS)})")
        for key in ("id", "kind", "tests"):
            if key not in row:
                raise ProblemError(f"{prefix}problem is missing required key {key!r}")
        try:
            tests = [_test_case(t, i) for i, t in enumerate(row["tests"])]
            checker = row.get("checker")
            interactor = row.get("interactor")
            comparison = row.get("comparison") or {}
            return cls(
                id=str(row["id"]),
                kind=row["kind"],
                tests=tests,
                fn_name=row.get("fn_name"),
                time_limit_s=float(row.get("time_limit_s") or DEFAULT_TIME_LIMIT_S),
                memory_limit_mb=int(row.get("memory_limit_mb") or DEFAULT_MEMORY_LIMIT_MB),
                checker=Checker(**checker) if checker else None,
                interactor=_interactor(interactor, row["id"]) if interactor else None,
                cpp_std=row.get("cpp_std"),
                comparison=Comparison(**comparison),
                metadata={**(row.get("metadata") or {}), **{k: row[k] for k in DATASET_KEYS if k in row}},
            )
        except ProblemError as e:
            raise ProblemError(f"{prefix}{e}") from None
        except (TypeError, ValueError) as e:
            raise ProblemError(f"{prefix}problem {row.get('id')!r}: {e}") from None


def _interactor(row: Any, problem_id: Any) -> Interactor:
    where = f"problem {str(problem_id)!r}: interactor"
    if not isinstance(row, dict):
        raise ProblemError(f"{where} must be an object with language, source and convention, got {type(row).__name__}")
    unknown = sorted(set(row) - set(Interactor.__dataclass_fields__))
    if unknown:
        raise ProblemError(f"{where}: unknown keys {unknown}; valid keys: language, source, convention")
    missing = [key for key in ("language", "source") if key not in row]
    if missing:
        raise ProblemError(f"{where}: missing keys {missing}")
    return Interactor(**row)


def _test_case(t: Any, index: int) -> TestCase:
    if not isinstance(t, dict) or "input" not in t or "output" not in t:
        raise ProblemError(f"test {index} must be an object with 'input' and 'output'")
    if not isinstance(t["input"], str) or not isinstance(t["output"], str):
        raise ProblemError(f"test {index}: 'input' and 'output' must be strings")
    return TestCase(t["input"], t["output"])


def load_problem_file(path: str | Path) -> Problem:
    path = Path(path)
    try:
        row = json.loads(path.read_text())
    except FileNotFoundError:
        raise ProblemError(f"{path}: no such problem file") from None
    except json.JSONDecodeError as e:
        raise ProblemError(f"{path}: not valid JSON ({e})") from None
    return Problem.from_dict(row, where=str(path))


def load_problems_jsonl(path: str | Path) -> list[Problem]:
    path = Path(path)
    if not path.exists():
        raise ProblemError(f"{path}: no such problems file")
    problems = []
    with path.open() as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ProblemError(f"{path}:{line_no}: not valid JSON ({e})") from None
            problems.append(Problem.from_dict(row, where=f"{path}:{line_no}"))
    return problems
