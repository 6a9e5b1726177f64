"""What the dataset holds before and after selection: counts per source, platform, kind and difficulty bucket,
written as statistics.json and statistics.md (a Markdown table per breakdown) beside the difficulty
histogram (histogram.py).

A problem's difficulty bucket comes from the first of these it has:
  annotations["difficulty_bucket"]                                 the filter's selection put it there
  annotations["calibrated_pass_rate"] or ["predicted_pass_rate"]   bucketed as selection does (select.SelectConfig)
  annotations["weighted_score"] (1-10)                             easy < 4 <= medium < 7 <= hard
  the source's own label or rating (difficulty.heuristic_predictor.source_level, 1-10), bucketed as a score
and "unknown" when it has none of them.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from megatron_mc.data.pipeline.difficulty.heuristic_predictor import source_level
from megatron_mc.data.pipeline.difficulty.select import SelectConfig
from megatron_mc.data.pipeline.histogram import HistogramData, write_histogram
from megatron_mc.data.pipeline.record import ProblemRecord
from megatron_mc.data.pipeline.jsonl import write_atomic

STATISTICS_JSON = "statistics.json"
STATISTICS_MD = "statistics.md"
HISTOGRAM_PNG = "difficulty_histogram.png"
PASS_RATE_KEYS = ("calibrated_pass_rate", "predicted_pass_rate")
SCORE_KEY = "weighted_score"
BUCKETS = ("easy", "medium", "hard", "unknown")
BREAKDOWNS = ("source", "platform", "kind", "difficulty")
_SELECTION = SelectConfig()  # its default pass-rate thresholds of easy and hard


def annotation_number(record: ProblemRecord, key: str) -> float | None:
    value = record.annotations.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def difficulty_bucket(record: ProblemRecord) -> str:
    if record.annotations.get("difficulty_bucket") in BUCKETS:
        return record.annotations["difficulty_bucket"]
    for key in PASS_RATE_KEYS:
        rate = annotation_number(record, key)
        if rate is not None:
            return _SELECTION.bucket(rate)
    score = annotation_number(record, SCORE_KEY)
    if score is None:
        score = source_level(record)
    if score is None:
        return "unknown"
    return "easy" if score < 4 else "medium" if score < 7 else "hard"


def breakdown(records: list[ProblemRecord]) -> dict[str, Any]:
    """{"total": n, "tests": n, "source": {name: count}, "platform": ..., "kind": ..., "difficulty": ...}"""
    values = {
        "source": (r.source for r in records),
        "platform": (r.platform or "unknown" for r in records),
        "kind": (r.problem.kind for r in records),
        "difficulty": (difficulty_bucket(r) for r in records),
    }
    out: dict[str, Any] = {"total": len(records), "tests": sum(len(r.problem.tests) for r in records)}
    for name, column in values.items():
        counts = Counter(column)
        order = [b for b in BUCKETS if b in counts] if name == "difficulty" else sorted(counts)
        out[name] = {key: counts[key] for key in order}
    return out


def markdown(statistics: dict[str, Any]) -> str:
    before, after = statistics["before"], statistics["after"]
    lines = ["# Dataset statistics", "",
             f"{after['total']} of {before['total']} problems kept ({after['tests']} of {before['tests']} tests).", ""]
    for name in BREAKDOWNS:
        keys = list(before[name]) + [k for k in after[name] if k not in before[name]]
        lines += [f"## {name}", "", f"| {name} | before | after | kept |", "|---|---:|---:|---:|"]
        for key in keys:
            b, a = before[name].get(key, 0), after[name].get(key, 0)
            lines.append(f"| {key} | {b} | {a} | {f'{a / b:.0%}' if b else '-'} |")
        lines.append("")
    return "\n".join(lines)


def histogram_data(before: list[ProblemRecord], after: list[ProblemRecord]) -> HistogramData:
    """The first of PASS_RATE_KEYS and SCORE_KEY that any problem has, over the problems that have it;
    else the difficulty buckets (the source's labels)."""
    for key in (*PASS_RATE_KEYS, SCORE_KEY):
        values = [[annotation_number(r, key) for r in side] for side in (before, after)]
        if any(v is not None for side in values for v in side):
            b, a = ([v for v in side if v is not None] for side in values)
            return HistogramData(key, b, a, unscored=sum(v is None for v in values[0]),
                                 value_range=(0.0, 1.0) if key in PASS_RATE_KEYS else (1.0, 10.0))
    b, a = (sorted((difficulty_bucket(r) for r in side), key=BUCKETS.index) for side in (before, after))
    return HistogramData("difficulty bucket (source label)", b, a)


def write_statistics(before: list[ProblemRecord], after: list[ProblemRecord], out_dir: str | Path) -> dict[str, Any]:
    """Write statistics.json, statistics.md and the difficulty histogram into `out_dir`; returns the figures."""
    out_dir = Path(out_dir)
    statistics = {"before": breakdown(before), "after": breakdown(after)}
    data = histogram_data(before, after)
    write_histogram(data, out_dir / HISTOGRAM_PNG)
    statistics["histogram"] = {"file": HISTOGRAM_PNG, "basis": data.basis, "unscored_before": data.unscored}
    write_atomic(out_dir / STATISTICS_JSON, json.dumps(statistics, indent=2) + "\n")
    write_atomic(out_dir / STATISTICS_MD, markdown(statistics))
    return statistics
