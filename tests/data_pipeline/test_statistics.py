"""Statistics per source, platform, kind and difficulty bucket before and after selection, and the difficulty
histogram PNG."""
from __future__ import annotations

import json
import struct

from judge.problem import Problem, TestCase
from megatron_mc.data.pipeline.record import ProblemRecord
from megatron_mc.data.pipeline.statistics import (HISTOGRAM_PNG, STATISTICS_JSON, STATISTICS_MD, breakdown,
                                                   difficulty_bucket, histogram_data, write_statistics)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def record(problem_id, source="bundled", platform=None, difficulty=None, kind="stdio", tests=2, **annotations):
    problem = Problem(id=problem_id, kind=kind, fn_name="f" if kind == "function" else None,
                      tests=[TestCase(str(i), str(i)) for i in range(tests)])
    return ProblemRecord(problem=problem, source=source, platform=platform, difficulty=difficulty,
                         annotations=annotations)


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_SIGNATURE) and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


BEFORE = [
    record("a", "livecodebench", "atcoder", "easy", calibrated_pass_rate=0.9, predicted_pass_rate=0.1),
    record("b", "livecodebench", "leetcode", "hard", kind="function", tests=5, predicted_pass_rate=0.5),
    record("c", "taco", "codeforces", "1900", weighted_score=8.0),
    record("d", "taco", "codeforces", "1900"),
    record("e", "bundled", None, "hard"),
    record("f", "bundled"),
]


def test_difficulty_bucket_prefers_calibrated_then_predicted_then_score_then_label():
    assert [difficulty_bucket(r) for r in BEFORE] == ["easy", "medium", "hard", "medium", "hard", "unknown"]
    assert difficulty_bucket(record("r", difficulty="800")) == "easy"
    assert difficulty_bucket(record("r", predicted_pass_rate=0.2, weighted_score=1.0)) == "hard"
    assert difficulty_bucket(record("r", predicted_pass_rate=0.7)) == "easy"  # selection's own threshold
    assert difficulty_bucket(record("r", difficulty_bucket="hard", predicted_pass_rate=0.9)) == "hard"


def test_breakdown_counts():
    counts = breakdown(BEFORE)
    assert (counts["total"], counts["tests"]) == (6, 15)
    assert counts["source"] == {"bundled": 2, "livecodebench": 2, "taco": 2}
    assert counts["platform"] == {"atcoder": 1, "codeforces": 2, "leetcode": 1, "unknown": 2}
    assert counts["kind"] == {"function": 1, "stdio": 5}
    assert counts["difficulty"] == {"easy": 1, "medium": 2, "hard": 2, "unknown": 1}


def test_write_statistics_json_markdown_and_png(tmp_path):
    after = [BEFORE[1], BEFORE[2]]
    figures = write_statistics(BEFORE, after, tmp_path)
    written = json.loads((tmp_path / STATISTICS_JSON).read_text())
    assert written == figures
    assert written["after"]["source"] == {"livecodebench": 1, "taco": 1}
    assert written["after"]["difficulty"] == {"medium": 1, "hard": 1}
    assert written["histogram"] == {"file": HISTOGRAM_PNG, "basis": "calibrated_pass_rate", "unscored_before": 5}
    table = (tmp_path / STATISTICS_MD).read_text()
    assert "2 of 6 problems kept (7 of 15 tests)." in table
    assert "| codeforces | 2 | 1 | 50% |" in table and "| unknown | 2 | 0 | 0% |" in table
    assert png_size((tmp_path / HISTOGRAM_PNG).read_bytes()) == (700, 400)


def test_histogram_basis_falls_back_to_source_labels(tmp_path):
    labelled = [BEFORE[3], BEFORE[4], BEFORE[5]]
    data = histogram_data(labelled, labelled[:1])
    assert data.basis == "difficulty bucket (source label)"
    assert (data.before, data.after) == (["medium", "hard", "unknown"], ["medium"])
    write_statistics(labelled, [], tmp_path)
    assert (tmp_path / HISTOGRAM_PNG).read_bytes().startswith(PNG_SIGNATURE)


def test_histogram_uses_weighted_score_when_no_pass_rate():
    data = histogram_data([BEFORE[2], BEFORE[3]], [BEFORE[2]])
    assert (data.basis, data.before, data.after, data.unscored, data.value_range) == \
        ("weighted_score", [8.0], [8.0], 1, (1.0, 10.0))
