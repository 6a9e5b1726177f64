"""How often the judge agrees with the labelled submissions of Kattis/ICPC problem packages (`mc-judge audit`).

An archive ships, beside each package's tests, the judges' own submissions filed by the verdict they must get:

  submissions/accepted/             AC
  submissions/wrong_answer/         WA
  submissions/time_limit_exceeded/  TLE
  submissions/run_time_error/       RTE (our RE, or MLE: problemtools sees a memory kill as a run-time error)
  submissions/rejected/             anything but AC (2023-07 format)

The rule is problemtools' (verifyproblem, for pass-fail problems): tests run in package order, the verdict is
that of the first rejected test, and it must be the label's verdict; so a TLE submission that gives WA before
it runs out of time disagrees, and one that gets AC always disagrees. CE and SE never agree: the archive's
judge built and ran every labelled submission.

Time limits follow problemtools too (the package's rule, judge/loaders/kattis.py): the accepted submissions
are judged first, and a package that fixes no limit gets the one Kattis would set from the slowest of them
(`calibrated_time_limit`); the other labels are judged under that limit. A submission that misses its label
only by timing out gets a second run with the limit times the package's time_limit_to_tle (safety margin),
and agrees "with extra time" when that run gives the label's verdict.
"""
from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from judge.loaders.kattis import calibrated_time_limit, load_package
from judge.pool import JudgePool
from judge.problem import Problem, ProblemError
from judge.verdict import JudgeResult, Verdict

LANGUAGE_BY_SUFFIX = {".py": "python", ".cpp": "cpp", ".cc": "cpp", ".cxx": "cpp", ".c++": "cpp"}
_REJECTED = frozenset({Verdict.WA, Verdict.TLE, Verdict.RE, Verdict.MLE, Verdict.OLE})
AGREEING_VERDICTS: dict[str, frozenset[Verdict]] = {
    "accepted": frozenset({Verdict.AC}),
    "wrong_answer": frozenset({Verdict.WA}),
    "time_limit_exceeded": frozenset({Verdict.TLE}),
    "run_time_error": frozenset({Verdict.RE, Verdict.MLE}),
    "rejected": _REJECTED,
}
EXPECTED = {"accepted": "AC", "wrong_answer": "WA", "time_limit_exceeded": "TLE", "run_time_error": "RTE",
            "rejected": "not AC"}
_DETAIL_CHARS = 500


def language_of(path: Path) -> str | None:
    """The judge's language for a source file, from its suffix; None when the judge does not run it."""
    return LANGUAGE_BY_SUFFIX.get(path.suffix.lower())


@dataclass(frozen=True)
class LabelledSubmission:
    package: str  # its folder, relative to the audited folder
    problem: Problem
    file: str  # relative to the package folder
    label: str
    language: str
    code: str

    def agrees(self, result: JudgeResult) -> bool:
        return result.verdict in AGREEING_VERDICTS[self.label]

    def row(self, result: JudgeResult) -> dict[str, Any]:
        return {"problem": self.package, "file": self.file, "label": self.label,
                "expected": EXPECTED[self.label], "verdict": result.verdict.value,
                "time_s": round(max((t.time_s for t in result.tests), default=0.0), 3)}


@dataclass
class AuditReport:
    packages_dir: str
    packages: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    agreed: Counter[str] = field(default_factory=Counter)
    verdicts: dict[str, Counter[str]] = field(default_factory=dict)
    disagreements: list[dict[str, Any]] = field(default_factory=list)
    agreed_with_extra_time: list[dict[str, Any]] = field(default_factory=list)
    time_limits: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)

    @property
    def judged(self) -> int:
        return sum(self.counts.values())

    @property
    def agreement(self) -> float | None:
        return sum(self.agreed.values()) / self.judged if self.judged else None

    def to_dict(self) -> dict[str, Any]:
        labels = {
            label: {"expected": EXPECTED[label], "count": self.counts[label], "agreed": self.agreed[label],
                    "disagreed": self.counts[label] - self.agreed[label], "verdicts": dict(self.verdicts[label])}
            for label in AGREEING_VERDICTS if self.counts[label]
        }
        return {"packages_dir": self.packages_dir, "packages": self.packages, "submissions": self.judged,
                "agreement": self.agreement, "labels": labels, "disagreements": self.disagreements,
                "agreed_with_extra_time": self.agreed_with_extra_time, "time_limits": self.time_limits,
                "skipped": self.skipped,
                "errors": self.errors}


def find_packages(root: Path) -> list[Path]:
    """Every problem package folder (one with a data/ folder) at or under `root`, sorted; not inside packages."""
    packages = []
    for folder, subfolders, _ in os.walk(root):
        if "data" in subfolders:
            packages.append(Path(folder))
            subfolders.clear()
        else:
            subfolders[:] = sorted(s for s in subfolders if not s.startswith("."))
    return sorted(packages)


def labelled_submissions(folder: Path, package: str, problem: Problem,
                         report: AuditReport) -> list[LabelledSubmission]:
    """The package's labelled submissions the judge runs; the rest go to report.skipped with the reason."""
    root = folder / "submissions"
    if not root.is_dir():
        report.skipped.append({"problem": package, "file": "submissions/", "reason": "no submissions/ folder"})
        return []
    found = []
    for labelled in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if labelled.name not in AGREEING_VERDICTS:
            report.skipped.append({"problem": package, "file": str(labelled.relative_to(folder)),
                                   "reason": f"label {labelled.name!r} is not audited "
                                             f"(audited: {', '.join(AGREEING_VERDICTS)})"})
            continue
        for path in sorted(p for p in labelled.iterdir() if not p.name.startswith(".")):
            reason, language, code = _readable(path)
            file = str(path.relative_to(folder))
            if reason:
                report.skipped.append({"problem": package, "file": file, "reason": reason})
            else:
                found.append(LabelledSubmission(package, problem, file, labelled.name, language, code))
    return found


def _readable(path: Path) -> tuple[str, str, str]:
    """(reason it is skipped or "", language, code)."""
    if path.is_dir():
        return "a submission of several files (the judge runs single-file submissions)", "", ""
    language = language_of(path)
    if language is None:
        return f"language {path.suffix or '(no suffix)'!r} is not one the judge runs (Python, C++)", "", ""
    try:
        return "", language, path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        return f"not UTF-8 text ({e})", "", ""


def audit(root: str | Path, pool: JudgePool, on_judged: Callable[[], Any] | None = None) -> AuditReport:
    """Judge every labelled submission of every package under `root`, calling `on_judged` after each (for
    progress). A package that does not load is recorded in report.errors (naming its folder) and the others
    still run."""
    report = AuditReport(packages_dir=str(root))
    problems, submissions = _load(Path(root), report)
    accepted = [s for s in submissions if s.label == "accepted"]
    accepted_results = _judged(pool, accepted, on_judged)
    for package, problem in problems.items():
        problems[package] = _time_limit_set(problem, [r for s, r in zip(accepted, accepted_results)
                                                      if s.package == package])
        rule = problems[package].metadata["time_limit_rule"]
        report.time_limits[package] = {"time_limit_s": problems[package].time_limit_s, "source": rule["source"]}
    others = [dataclasses.replace(s, problem=problems[s.package]) for s in submissions if s.label != "accepted"]
    judged = [*accepted, *others]
    results = [*accepted_results, *_judged(pool, others, on_judged)]
    with_extra_time = _rejudged_with_extra_time(judged, results, pool)
    for index, (submission, result) in enumerate(zip(judged, results)):
        _record(report, submission, result, with_extra_time.get(index))
    return report


def _load(root: Path, report: AuditReport) -> tuple[dict[str, Problem], list[LabelledSubmission]]:
    """The problems by package name, and their labelled submissions."""
    problems: dict[str, Problem] = {}
    submissions: list[LabelledSubmission] = []
    for folder in find_packages(root):
        try:
            problem = load_package(folder)
        except (ProblemError, OSError) as e:
            report.errors.append({"package": str(folder), "error": str(e)})
            continue
        package = str(folder.relative_to(root)) if folder != root else problem.id
        problems[package] = problem
        submissions += labelled_submissions(folder, package, problem, report)
    report.packages = len(problems)
    return problems, submissions


def _judged(pool: JudgePool, submissions: list[LabelledSubmission],
            on_judged: Callable[[], Any] | None) -> list[JudgeResult]:
    by_index: dict[int, JudgeResult] = {}
    for index, result in pool.judge_iter((s.problem, s.code, s.language) for s in submissions):
        by_index[index] = result
        if on_judged is not None:
            on_judged()
    return [by_index[i] for i in range(len(submissions))]


def _time_limit_set(problem: Problem, accepted: list[JudgeResult]) -> Problem:
    """The problem under the limit Kattis would judge it with: the package's own, else the one its accepted
    submissions set (the slowest test of the slowest AC); unchanged when none of them got AC."""
    times = [max(t.time_s for t in r.tests) for r in accepted if r.verdict is Verdict.AC]
    return calibrated_time_limit(problem, max(times)) if times else problem


def _rejudged_with_extra_time(submissions: list[LabelledSubmission], results: list[JudgeResult],
                              pool: JudgePool) -> dict[int, JudgeResult]:
    """Results with the time limit times the package's safety margin, by index, for the submissions whose
    TLE disagrees with their label."""
    indices = [i for i, (s, r) in enumerate(zip(submissions, results))
               if r.verdict is Verdict.TLE and not s.agrees(r)]
    slower = [(_with_extra_time(submissions[i].problem), submissions[i].code, submissions[i].language)
              for i in indices]
    return dict(zip(indices, pool.judge_many(slower)))


def _with_extra_time(problem: Problem) -> Problem:
    margin = problem.metadata["time_limit_rule"]["time_limit_to_tle"]
    return dataclasses.replace(problem, time_limit_s=problem.time_limit_s * margin)


def _record(report: AuditReport, submission: LabelledSubmission, result: JudgeResult,
            with_extra_time: JudgeResult | None) -> None:
    label = submission.label
    report.counts[label] += 1
    report.verdicts.setdefault(label, Counter())[result.verdict.value] += 1
    if submission.agrees(result):
        report.agreed[label] += 1
    elif with_extra_time is not None and submission.agrees(with_extra_time):
        report.agreed[label] += 1
        report.agreed_with_extra_time.append({
            **submission.row(result), "with_extra_time": with_extra_time.verdict.value,
            "extra_time_limit_s": _with_extra_time(submission.problem).time_limit_s})
    else:
        # The compiler's message or the stderr of the failing test: why, for a person checking the judge.
        detail = {"detail": result.detail[-_DETAIL_CHARS:]} if result.detail else {}
        report.disagreements.append({**submission.row(result), **detail})


def write_report(report: AuditReport, path: str | Path) -> None:
    """Write the JSON report whole or not at all: a temporary file beside it, renamed into place."""
    path = Path(path)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w") as f:
            json.dump(report.to_dict(), f, indent=2)
            f.write("\n")
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def format_table(report: AuditReport) -> str:
    """Agreement per label, then each disagreement, as text for a terminal."""
    header = f"{'label':<20} {'expect':<7} {'count':>5} {'agreed':>6} {'rate':>7}  our verdicts"
    lines = [header, "-" * len(header)]
    for label, row in report.to_dict()["labels"].items():
        verdicts = ", ".join(f"{v} {n}" for v, n in sorted(row["verdicts"].items()))
        lines.append(f"{label:<20} {row['expected']:<7} {row['count']:>5} {row['agreed']:>6} "
                     f"{_percent(row['agreed'], row['count']):>7}  {verdicts}")
    agreed = sum(report.agreed.values())
    lines.append(f"{'all':<20} {'':<7} {report.judged:>5} {agreed:>6} {_percent(agreed, report.judged):>7}")
    for row in report.disagreements:
        lines.append(f"disagrees: {row['problem']}/{row['file']}: expected {row['expected']}, "
                     f"got {row['verdict']} ({row['time_s']:.2f} s)")
    for row in report.agreed_with_extra_time:
        lines.append(f"agrees only with extra time: {row['problem']}/{row['file']}: {row['verdict']}, "
                     f"then {row['with_extra_time']} with {row['extra_time_limit_s']:g} s")
    return "\n".join(lines)


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"
