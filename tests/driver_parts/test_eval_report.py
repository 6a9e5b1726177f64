"""pass@k aggregation, breakdowns by difficulty and platform, and contest-date windows (hand-computed)."""
import pytest

from megatron_mc.eval.report import ProblemResult, build_report, format_table
from megatron_mc.eval.windows import in_window, resolve_window

RESULTS = [
    ProblemResult("A", 4, 4, {"difficulty": "easy", "platform": "leetcode", "contest_date": "2024-07-31T12:00:00"},
                  {"AC": 4}),
    ProblemResult("B", 4, 1, {"difficulty": "easy", "platform": "atcoder", "contest_date": "2024-08-01"},
                  {"AC": 1, "WA": 3}),
    ProblemResult("C", 4, 0, {"difficulty": "hard", "platform": "atcoder", "contest_date": "2025-02-01"},
                  {"TLE": 4}),
]


def test_overall_and_breakdowns():
    report = build_report(RESULTS, [1, 2])
    assert report["overall"] == pytest.approx({"pass@1": 1.25 / 3, "pass@2": 1.5 / 3})
    assert report["by_difficulty"]["easy"] == pytest.approx({"num_problems": 2, "pass@1": 0.625, "pass@2": 0.75})
    assert report["by_difficulty"]["hard"] == pytest.approx({"num_problems": 1, "pass@1": 0.0, "pass@2": 0.0})
    assert report["by_platform"]["atcoder"] == pytest.approx({"num_problems": 2, "pass@1": 0.125, "pass@2": 0.25})
    assert report["by_platform"]["leetcode"] == pytest.approx({"num_problems": 1, "pass@1": 1.0, "pass@2": 1.0})
    assert report["verdicts"] == {"AC": 5, "TLE": 4, "WA": 3}


def test_table_lists_every_group_in_percent():
    table = format_table(build_report(RESULTS, [1, 2]))
    assert "overall" in table and "difficulty=hard" in table and "platform=leetcode" in table
    assert " 41.67%" in table and " 12.50%" in table


@pytest.mark.parametrize("window, kept", [("v5", ["B"]), ("v6", ["C"]), (None, ["A", "B", "C"])])
def test_named_windows(window, kept):
    date_from, date_to = resolve_window(window, None, None)
    assert [r.problem_id for r in RESULTS if in_window(r.metadata, date_from, date_to)] == kept


def test_window_edges_and_undated_problems():
    assert in_window({"contest_date": "2024-08-01"}, "2024-08-01", None)
    assert not in_window({"contest_date": "2025-05-01"}, None, "2025-05-01")
    assert not in_window({}, "2024-01-01", None)
    assert in_window({}, None, None)
    with pytest.raises(ValueError, match="not both"):
        resolve_window("v5", "2024-01-01", None)
    with pytest.raises(ValueError, match="unknown date window"):
        resolve_window("v7", None, None)


def test_report_refuses_too_few_samples_and_empty_sets():
    with pytest.raises(ValueError, match="pass@8 needs at least 8"):
        build_report(RESULTS, [1, 8])
    with pytest.raises(ValueError, match="no problems"):
        build_report([], [1])
