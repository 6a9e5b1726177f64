"""Controlled comparisons between the study's points, each naming the difference in held-out points and
whether the seeds' spread covers it.

Grid: a point is compared with the point that has the first value of one axis and the same values of every
other axis (`algo.preset=dapo vs grpo`). Listed points: each point is compared with the first one.
The spread is the larger seed standard deviation of the two points; a difference larger than it
"exceeds spread", else it is "within spread"; with one seed the spread is unknown.
"""
from __future__ import annotations

from dataclasses import dataclass
from megatron_mc.study.report_table import Aggregate
from megatron_mc.study.runs import StudyRun, point_label
from megatron_mc.study.study_file import Study


@dataclass
class Comparison:
    title: str  # "algo.preset=dapo vs grpo"
    column: str  # "final eval/pass@1"
    difference: float  # points (percent): mean of the point minus mean of its baseline
    spread: float | None  # points

    @property
    def verdict(self) -> str:
        if self.spread is None:
            return "spread unknown (one seed)"
        return "exceeds spread" if abs(self.difference) > self.spread else "within spread"

    def __str__(self) -> str:
        metric = self.column.replace("eval/", "")
        spread = "n/a" if self.spread is None else f"±{self.spread:.1f}"
        return f"{self.title}: {self.difference:+.1f} points {metric}; seed spread {spread} -> {self.verdict}"


def point_pairs(study: Study, runs: list[StudyRun]) -> list[tuple[str, str, str]]:
    """(title, baseline label, point label) for every controlled comparison of the study."""
    points = list({run.label: run.point for run in runs}.values())
    if study.spec.points:
        first = point_label(points[0])
        return [(f"{point_label(p)} vs {first}", first, point_label(p)) for p in points[1:]]
    pairs = []
    for key, values in study.spec.axes.items():
        for point in (p for p in points if p[key] != values[0]):
            baseline = {**point, key: values[0]}
            others = ", ".join(f"{k}={v}" for k, v in point.items() if k != key)
            title = f"{key}={point[key]} vs {values[0]}" + (f" (at {others})" if others else "")
            pairs.append((title, point_label(baseline), point_label(point)))
    return pairs


def compare(study: Study, runs: list[StudyRun], table: dict[str, dict[str, Aggregate]],
            columns: list[str]) -> list[Comparison]:
    out = []
    for title, base_label, label in point_pairs(study, runs):
        if base_label not in table or label not in table:
            continue  # a point with no figures yet
        for column in columns:
            a, b = table[base_label].get(column), table[label].get(column)
            if a is None or b is None:
                continue
            spread = None if a.spread is None or b.spread is None else 100 * max(a.spread, b.spread)
            out.append(Comparison(title, column, 100 * (b.mean - a.mean), spread))
    return out
