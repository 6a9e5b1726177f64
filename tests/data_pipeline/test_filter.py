"""The filter stage with the heuristic predictor: each quality rule's rejection reason, the difficulty
annotations, the scored file (difficulty before selection), the easy-share cut, and bad settings."""
from __future__ import annotations

import json

import pytest

import judge.problem
from judge.problem import Problem, TestCase
from megatron_mc.data.pipeline.filter import (
    SCORED_NAME, CalibrationConfig, DifficultyConfig, FilterConfig, run_filter)
from megatron_mc.data.pipeline.jsonl import read_records
from megatron_mc.data.pipeline.record import ProblemRecord
from megatron_mc.data.pipeline.stage import StageContext

def record(pid: str, tests: int = 5, statement: str = "Read n (1 <= n <= 10^5) and print n.", metadata=None,
           **annotations) -> ProblemRecord:
    problem = Problem(pid, "stdio", [TestCase(f"{i}\n", f"{i}\n") for i in range(tests)], metadata=metadata or {})
    return ProblemRecord(problem, source="test", statement=statement, annotations=annotations)


def test_each_quality_rule_rejects_with_its_reason(tmp_path):
    records = [
        record("ok"),
        record("two_tests", tests=2),
        record("kattis_interactive", metadata={"validation": "custom interactive"}),
        record("has_interactor_file", metadata={"interactor": "interactor.cpp"}),
        record("flagged", metadata={"interactive": True}),
        record("tagged", tags=["binary search", "interactive"]),
    ]
    out = run_filter(records, FilterConfig(difficulty=DifficultyConfig(enabled=False)), StageContext(tmp_path, quiet=True))
    assert [r.id for r in out.kept] == ["ok"]
    reasons = {r.id: (r.stage, r.reason) for r in out.rejected}
    assert reasons == {"two_tests": ("filter", "too_few_tests"), "kattis_interactive": ("filter", "interactive"),
                       "has_interactor_file": ("filter", "interactive"), "flagged": ("filter", "interactive"),
                       "tagged": ("filter", "interactive")}
    details = {r.id: r.detail for r in out.rejected}
    assert "2 tests, min_tests is 3" in details["two_tests"]
    assert "'custom interactive'" in details["kattis_interactive"] and "no interactor" in details["kattis_interactive"]
    assert out.report["quality"] == {"in": 6, "kept": 1}


@pytest.mark.skipif(not hasattr(judge.problem, "Interactor"), reason="this judge does not run interactive problems")
def test_interactive_problems_the_judge_can_run_are_kept_unless_rejected_by_config(tmp_path):
    interactor = judge.problem.Interactor("python", "import sys\nsys.exit(42)\n")
    problem = Problem("runnable", "stdio", [TestCase(f"{i}\n", "") for i in range(3)], interactor=interactor,
                      metadata={"validation": "custom interactive"})
    rec = ProblemRecord(problem, source="test", statement="Guess the number.")
    off = DifficultyConfig(enabled=False)
    assert [r.id for r in run_filter([rec], FilterConfig(difficulty=off), StageContext(tmp_path, quiet=True)).kept] \
        == ["runnable"]
    out = run_filter([rec], FilterConfig(interactive="reject", difficulty=off), StageContext(tmp_path, quiet=True))
    assert [(r.reason, "'reject'" in r.detail) for r in out.rejected] == [("interactive", True)]


@pytest.mark.parametrize("fallback", ["rank", "logistic_prior"])
def test_heuristic_difficulty_annotates_writes_the_scored_file_and_cuts_the_easy_tail(tmp_path, fallback):
    easy = [record(f"easy{i}", statement="Print a + b for integers a and b (1 <= a, b <= 9). " * (1 + i))
            for i in range(8)]
    hard = [record(f"hard{i}", statement=("Given a tree with n vertices (1 <= n <= 2·10^5) and weights up to 10^18, "
                                          "answer q queries modulo a prime. " * 8), tags=["dp", "trees", "math"])
            for i in range(4)]
    ctx = StageContext(tmp_path, quiet=True)
    difficulty = DifficultyConfig(predictor="heuristic", calibration=CalibrationConfig(fallback=fallback))
    out = run_filter(easy + hard, FilterConfig(difficulty=difficulty), ctx)
    kept = {r.id: r for r in out.kept}
    assert set(kept) >= {f"hard{i}" for i in range(4)}
    easy_kept = [i for i, r in kept.items() if r.annotations["difficulty_bucket"] == "easy"]
    assert len(easy_kept) <= 0.2 * len(kept)
    assert {r.reason for r in out.rejected} == {"too_easy"}
    assert {r.id for r in out.rejected} <= {r.id for r in easy}
    a = kept["hard0"].annotations
    assert a["difficulty_predictor"] == "heuristic" and set(a["difficulty_scores"]) == set(DifficultyConfig().dimensions)
    assert 1 <= a["weighted_score"] <= 10 and 0 <= a["predicted_pass_rate"] < 0.3 and a["difficulty_bucket"] == "hard"
    assert "calibrated_pass_rate" not in a
    report = out.report["difficulty"]
    assert report["predictor"] == "heuristic" and report["pass_rate_map"] == f"uncalibrated ({fallback})"
    assert report["calibration"]["status"].startswith("skipped: no engine")
    scored = read_records(tmp_path / SCORED_NAME)
    assert [r.id for r in scored] == [r.id for r in easy + hard], "every scored problem, before selection"
    assert all("predicted_pass_rate" in r.annotations for r in scored)
    json.dumps(out.report)  # the manifest stores it as JSON


def test_llm_predictor_without_an_endpoint_is_a_config_error(tmp_path):
    with pytest.raises(ValueError, match="filter.difficulty.llm.base_url"):
        run_filter([record("a")], FilterConfig(difficulty=DifficultyConfig(predictor="llm")),
                   StageContext(tmp_path, quiet=True))


@pytest.mark.parametrize("build, key", [
    (lambda: FilterConfig(min_tests=0), "filter.min_tests"),
    (lambda: FilterConfig(interactive="sometimes"), "filter.interactive"),
    (lambda: DifficultyConfig(predictor="oracle"), "filter.difficulty.predictor"),
    (lambda: CalibrationConfig(fallback="guess"), "filter.difficulty.calibration.fallback"),
    (lambda: CalibrationConfig(method="spline"), "filter.difficulty.calibration.method"),
    (lambda: DifficultyConfig(dimensions={"algorithmic_thinking": 0.7}), "filter.difficulty.dimensions"),
])
def test_bad_settings_name_the_key(build, key):
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        build()
