"""The verify stage: run every reference solution through the judge, keep only the tests the passing
references agree on, and drop problems whose references do not hold up.

The rule, per problem with T tests (all of them run, with the problem's limits times time_limit_scale):
  1. A *passing reference* is one that passes more than `passing_reference_fraction` (default: half) of the
     T tests. Requiring it to pass every test would let one wrong test (a bad expected output) condemn
     every correct reference, and with it the problem.
  2. Only a wrong answer (WA) is evidence against a test: a reference that runs out of time or memory, or
     crashes, says nothing about the test's expected output. Per test:
       - every passing reference passes it: the test is kept;
       - some passing reference passes it: the test is kept, and the passing references that fail it (WA,
         TLE, MLE, RE, ...) are dropped (a correct solution passes every correct test);
       - no passing reference passes it, every one gets WA on it and at least two passing references do
         (they agree with each other, not with the test): a *bad test*, dropped (its expected output is
         most likely wrong);
       - otherwise (one passing reference only, or some of them time out or crash): the test is kept and the
         references that fail it are dropped. With one reference, a failing test thus drops the reference,
         not the test: one solution alone cannot tell a wrong test from its own bug or slowness.
  3. The problem is rejected with
       no_reference_solution       no reference in a language the stage runs (`languages`; function-call
                                   problems run Python only),
       no_reference_passes         no reference is a passing one, or every passing one was dropped in 2,
       too_few_tests_after_verify  fewer than `min_tests` tests are kept,
       weak_tests                  (with `require_incorrect_fail`) a known-wrong solution passes every kept test.
The kept record holds only the kept tests (metadata["public_tests"], their public count, too) and, as
reference_solutions, only the passing references not dropped (each passes every kept test);
annotations["verify"] says what was dropped (bad_tests, dropped_references).

Each problem's result is appended to the checkpoint "verify" (ctx.checkpoint) as soon as it is known, with a
fingerprint of what was judged (tests, limits, solutions, this config); a rerun reuses every result whose
fingerprint still matches and judges only the rest. The stage then writes its statistics and difficulty
histogram (statistics.write_statistics) into ctx.out_dir.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from judge.pool import JudgePool
from judge.problem import Problem
from judge.runner import normalize_language
from judge.verdict import JudgeResult, Verdict
from megatron_mc.data.pipeline.record import ProblemRecord, Rejection, StageOutput
from megatron_mc.data.pipeline.statistics import write_statistics

STAGE = "verify"
RULE_VERSION = 2   # in the fingerprint: a checkpointed result of an older agreement rule is judged again
RUNNABLE_LANGUAGES = ("python", "cpp")


@dataclass
class VerifyConfig:
    min_tests: int = 3                        # tests a problem must keep after dropping bad ones
    passing_reference_fraction: float = 0.5   # a passing reference passes more than this share of the tests
    require_incorrect_fail: bool = True       # weak tests: reject when a known-wrong solution passes every kept test
    time_limit_scale: float = 1.0             # multiplies each problem's time limit while verifying
    languages: list[str] = field(default_factory=lambda: list(RUNNABLE_LANGUAGES))  # reference languages to run

    def __post_init__(self) -> None:
        if not isinstance(self.min_tests, int) or self.min_tests < 1:
            raise ValueError(f"verify.min_tests must be an integer >= 1, got {self.min_tests!r}")
        if not (0.0 <= self.passing_reference_fraction < 1.0):
            raise ValueError("verify.passing_reference_fraction must be in [0, 1), "
                             f"got {self.passing_reference_fraction!r}")
        if not (self.time_limit_scale > 0):
            raise ValueError(f"verify.time_limit_scale must be > 0, got {self.time_limit_scale!r}")
        if isinstance(self.languages, str) or not self.languages or \
                any(lang not in RUNNABLE_LANGUAGES for lang in self.languages):
            raise ValueError(f"verify.languages must be a non-empty list of {', '.join(RUNNABLE_LANGUAGES)}; "
                             f"got {self.languages!r}")


@dataclass(frozen=True)
class Agreement:
    """What the passing references say about each test (the rule in the module docstring)."""

    passing: list[int]              # indices of the passing references that survive (each passes every kept test)
    kept_tests: list[int]
    bad_tests: list[int]            # every passing reference (at least two) gets WA on these
    dropped_references: list[int]   # passing references dropped for failing a kept test


def agreement(verdicts: list[list[str]], n_tests: int, passing_fraction: float) -> Agreement:
    """`verdicts[r][t]`: reference r's verdict on test t ("AC", "WA", "TLE", ...). Without a passing reference
    no test is kept or judged bad."""
    ac, wa = Verdict.AC.value, Verdict.WA.value
    candidates = [r for r, row in enumerate(verdicts) if sum(v == ac for v in row) > passing_fraction * n_tests]
    if not candidates:
        return Agreement([], [], [], [])
    kept, bad, dropped = [], [], set()
    for t in range(n_tests):
        failing = [r for r in candidates if verdicts[r][t] != ac]
        if len(candidates) >= 2 and len(failing) == len(candidates) and all(verdicts[r][t] == wa for r in failing):
            bad.append(t)
        else:
            kept.append(t)
            dropped.update(failing)
    return Agreement([r for r in candidates if r not in dropped], kept, bad, sorted(dropped))


def run_verify(records: list[ProblemRecord], cfg: VerifyConfig, ctx,
               before: list[ProblemRecord] | None = None) -> StageOutput:
    """Verify `records`; `before` (default: `records`) are the records before difficulty selection, for the
    statistics and histogram's "before" side."""
    _check_unique_ids(records)
    checkpoint = ctx.checkpoint(STAGE)
    results: dict[str, dict[str, Any]] = {}
    todo: list[tuple[ProblemRecord, str]] = []
    for record in records:
        stamp = fingerprint(record, cfg)
        row = checkpoint.done.get(record.id)
        if row is not None and row.get("fingerprint") == stamp:
            results[record.id] = row
        else:
            todo.append((record, stamp))
    reused = len(results)
    if todo:
        _judge_all(todo, cfg, ctx, checkpoint, results)
    kept: list[ProblemRecord] = []
    rejected: list[Rejection] = []
    for record in records:
        row = results[record.id]
        if row["reason"]:
            rejected.append(Rejection(record.id, STAGE, row["reason"], row["detail"]))
        else:
            kept.append(_verified_record(record, row))
    report = {
        "judged": len(todo), "reused_from_checkpoint": reused,
        "tests_before": sum(len(r.problem.tests) for r in records),
        "tests_after": sum(len(r.problem.tests) for r in kept),
        "bad_tests": sum(len(results[r.id].get("bad_tests", [])) for r in records),
        "dropped_references": sum(len(results[r.id].get("dropped_references", [])) for r in records),
        "statistics": write_statistics(before if before is not None else records, kept, ctx.out_dir),
    }
    return StageOutput(kept, rejected, report)


def _check_unique_ids(records: list[ProblemRecord]) -> None:
    seen: set[str] = set()
    for record in records:
        if record.id in seen:
            raise ValueError(f"verify: problem id {record.id!r} appears more than once in the input; ids must be "
                             "unique (each problem's result is checkpointed under its id)")
        seen.add(record.id)


def fingerprint(record: ProblemRecord, cfg: VerifyConfig) -> str:
    """Changes whenever what verify judges, or how, changes: a checkpointed result is reused only if equal."""
    judged = record.problem.to_dict()
    judged.pop("metadata", None)
    judged["reference_solutions"] = record.reference_solutions
    judged["incorrect_solutions"] = record.incorrect_solutions
    judged["config"] = dataclasses.asdict(cfg)
    judged["rule"] = RULE_VERSION
    return hashlib.sha256(json.dumps(judged, sort_keys=True).encode()).hexdigest()[:16]


def _judge_all(todo: list[tuple[ProblemRecord, str]], cfg: VerifyConfig, ctx, checkpoint,
               results: dict[str, dict[str, Any]]) -> None:
    """Judge several problems at once (each problem's submissions go to the shared pool together); each
    result is checkpointed by this thread as soon as its problem is done."""
    pool = ctx.judge_pool()
    executor = ThreadPoolExecutor(max_workers=max(1, ctx.workers), thread_name_prefix="mc-data-verify")
    try:
        futures = {executor.submit(verify_problem, pool, record, cfg): (record, stamp) for record, stamp in todo}
        for future in ctx.progress(as_completed(futures), total=len(futures), desc="verify"):
            record, stamp = futures[future]
            row = {**future.result(), "fingerprint": stamp}
            checkpoint.append(record.id, row)
            results[record.id] = row
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def verify_problem(pool: JudgePool, record: ProblemRecord, cfg: VerifyConfig) -> dict[str, Any]:
    """The checkpoint row of one problem: its rejection reason (or None) and what the judge said."""
    problem = dataclasses.replace(record.problem, time_limit_s=record.problem.time_limit_s * cfg.time_limit_scale)
    n_tests = len(problem.tests)
    references = _runnable(record.reference_solutions, problem, cfg)
    if not references:
        had = sorted({s["language"] for s in record.reference_solutions}) or ["none"]
        return _rejected("no_reference_solution", f"no reference solution the judge runs here for a "
                         f"{problem.kind} problem in {', '.join(_languages_for(problem, cfg))} (has: {', '.join(had)})")
    judged = pool.judge_many([(problem, s["code"], s["language"]) for _, s in references], all_tests=True)
    agreed = agreement([_verdicts(result, n_tests) for result in judged], n_tests, cfg.passing_reference_fraction)
    row: dict[str, Any] = {
        "reason": None, "detail": "",
        "references": [{"index": i, "language": s["language"], "verdict": result.verdict.value,
                        "passed": result.passed, "passing": k in agreed.passing,
                        "dropped": k in agreed.dropped_references}
                       for k, ((i, s), result) in enumerate(zip(references, judged))],
        "kept_tests": agreed.kept_tests, "bad_tests": agreed.bad_tests,
        "dropped_references": [references[k][0] for k in agreed.dropped_references],
        "incorrect": [],
    }
    if not agreed.passing:
        best = max(judged, key=lambda r: r.passed)
        if agreed.dropped_references:
            return {**row, **_rejected("no_reference_passes", f"every passing reference fails a test that is kept "
                                       f"(no two references agree that its expected output is wrong; best: "
                                       f"{best.passed}/{n_tests}, {best.verdict.value}{_first_line(best.detail)})")}
        return {**row, **_rejected("no_reference_passes", f"none of {len(judged)} reference(s) passes more than "
                                   f"{cfg.passing_reference_fraction:.0%} of the {n_tests} tests (best: "
                                   f"{best.passed}/{n_tests}, {best.verdict.value}{_first_line(best.detail)})")}
    if len(agreed.kept_tests) < cfg.min_tests:
        return {**row, **_rejected("too_few_tests_after_verify", f"{len(agreed.kept_tests)} of {n_tests} tests kept "
                                   f"({len(agreed.bad_tests)} bad); "
                                   f"min_tests is {cfg.min_tests}")}
    if cfg.require_incorrect_fail and record.incorrect_solutions:
        kept_problem = dataclasses.replace(problem, tests=[problem.tests[t] for t in agreed.kept_tests])
        wrong = _runnable(record.incorrect_solutions, kept_problem, cfg)
        verdicts = pool.judge_many([(kept_problem, s["code"], s["language"]) for _, s in wrong])
        row["incorrect"] = [{"index": i, "language": s["language"], "verdict": result.verdict.value,
                             "caught": not result.accepted} for (i, s), result in zip(wrong, verdicts)]
        uncaught = [entry for entry in row["incorrect"] if not entry["caught"]]
        if uncaught:
            first = uncaught[0]
            return {**row, **_rejected("weak_tests", f"known-wrong solution {first['index']} ({first['language']}) "
                                       f"passes all {len(agreed.kept_tests)} kept tests")}
    return row


def _languages_for(problem: Problem, cfg: VerifyConfig) -> list[str]:
    # the judge runs function-call problems in Python only
    return [lang for lang in cfg.languages if problem.kind == "stdio" or lang == "python"]


def _runnable(solutions: list[dict], problem: Problem, cfg: VerifyConfig) -> list[tuple[int, dict]]:
    """(index, solution) of the solutions in a language this stage runs for this problem."""
    allowed = _languages_for(problem, cfg)
    out = []
    for i, solution in enumerate(solutions):
        try:
            language = normalize_language(solution["language"])
        except ValueError:
            continue
        if language in allowed:
            out.append((i, solution))
    return out


def _verdicts(result: JudgeResult, n_tests: int) -> list[str]:
    """Per test: the verdict. A test the submission never ran (compile error, judge error) gets the
    submission's verdict (never AC or WA: it says nothing about the test)."""
    verdicts = [t.verdict.value for t in result.tests]
    missing = result.verdict.value if result.verdict not in (Verdict.AC, Verdict.WA) else Verdict.SE.value
    return verdicts + [missing] * (n_tests - len(verdicts))


def _rejected(reason: str, detail: str) -> dict[str, Any]:
    return {"reason": reason, "detail": detail}


def _first_line(detail: str) -> str:
    line = next((s.strip() for s in detail.splitlines() if s.strip()), "")
    return f": {line[:200]}" if line else ""


def _verified_record(record: ProblemRecord, row: dict[str, Any]) -> ProblemRecord:
    tests = record.problem.tests
    kept_tests = [tests[t] for t in row["kept_tests"]]
    metadata = dict(record.problem.metadata)
    if isinstance(metadata.get("public_tests"), int):   # the first public_tests tests are the public ones
        metadata["public_tests"] = sum(t < metadata["public_tests"] for t in row["kept_tests"])
    problem = dataclasses.replace(record.problem, tests=kept_tests, metadata=metadata)
    passing = [entry["index"] for entry in row["references"] if entry["passing"]]
    annotations = {**record.annotations, "verify": {
        "tests_before": len(tests), "tests_after": len(row["kept_tests"]),
        "bad_tests": row["bad_tests"], "dropped_references": row.get("dropped_references", []),
        "references_passing": len(passing), "references_judged": len(row["references"]),
        "incorrect_caught": sum(entry["caught"] for entry in row["incorrect"]),
    }}
    return dataclasses.replace(record, problem=problem,
                               reference_solutions=[record.reference_solutions[i] for i in passing],
                               annotations=annotations)

