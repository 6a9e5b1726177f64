"""Verdicts and results, per test and per submission, in the JSON form every interface returns:
{"verdict", "passed", "total", "tests": [{"verdict", "time_s"}...], "wall_s"} (+ "detail" when there
is something to say, such as compiler output)."""
from __future__ import annotations

import signal
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from judge.executor import EXIT_MEMORY, Outcome


class Verdict(str, Enum):
    AC = "AC"  # accepted
    WA = "WA"  # wrong answer
    TLE = "TLE"  # time limit exceeded (CPU time, or the wall-clock limit)
    MLE = "MLE"  # memory limit exceeded
    RE = "RE"  # runtime error: non-zero exit, uncaught exception, killed by a signal
    OLE = "OLE"  # output limit exceeded
    CE = "CE"  # compile error (C++), syntax error (Python)
    SE = "SE"  # sandbox or judge error: not the submission's fault


@dataclass(frozen=True)
class TestResult:
    verdict: Verdict
    time_s: float

    __test__ = False

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict.value, "time_s": round(self.time_s, 6)}


@dataclass
class JudgeResult:
    verdict: Verdict
    passed: int
    total: int
    tests: list[TestResult] = field(default_factory=list)
    wall_s: float = 0.0
    detail: str = ""

    @property
    def accepted(self) -> bool:
        return self.verdict is Verdict.AC

    def to_dict(self) -> dict[str, Any]:
        row = {
            "verdict": self.verdict.value,
            "passed": self.passed,
            "total": self.total,
            "tests": [t.to_dict() for t in self.tests],
            "wall_s": round(self.wall_s, 6),
        }
        if self.detail:
            row["detail"] = self.detail
        return row

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> JudgeResult:
        return cls(
            verdict=Verdict(row["verdict"]),
            passed=int(row["passed"]),
            total=int(row["total"]),
            tests=[TestResult(Verdict(t["verdict"]), float(t["time_s"])) for t in row.get("tests", [])],
            wall_s=float(row.get("wall_s", 0.0)),
            detail=row.get("detail", ""),
        )


# Out-of-memory shows up as MemoryError in Python, std::bad_alloc in C++, or an allocator abort.
_MEMORY_MARKERS = (b"MemoryError", b"std::bad_alloc", b"Cannot allocate memory", b"out of memory")


def verdict_of_run(outcome: Outcome, time_limit_s: float) -> Verdict | None:
    """The verdict implied by how the child ended; None when it ended cleanly and its output decides."""
    if not outcome.ready:
        return Verdict.SE
    if outcome.output_exceeded:
        return Verdict.OLE
    if outcome.timed_out or outcome.cpu_s > time_limit_s or outcome.signal == signal.SIGXCPU:
        return Verdict.TLE
    failed = outcome.exit_code != 0 or outcome.signal is not None
    if outcome.exit_code == EXIT_MEMORY or (failed and any(m in outcome.stderr for m in _MEMORY_MARKERS)):
        return Verdict.MLE
    if failed:
        return Verdict.RE
    return None


def overall(tests: list[TestResult]) -> Verdict:
    """AC when every test passed, else the first failure's verdict."""
    return next((t.verdict for t in tests if t.verdict is not Verdict.AC), Verdict.AC)


def reward_from_result(result: JudgeResult | dict[str, Any]) -> float:
    """1.0 for AC, else 0.0: no partial credit (partial credit rewards code that fails hidden tests)."""
    verdict = result["verdict"] if isinstance(result, dict) else result.verdict
    return 1.0 if Verdict(verdict) is Verdict.AC else 0.0
