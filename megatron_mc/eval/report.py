"""Aggregate per-problem results into pass@k overall and by difficulty and platform, and print a table."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from megatron_mc.eval.pass_at_k import pass_at_k

BREAKDOWNS = ("difficulty", "platform")


@dataclass
class ProblemResult:
    problem_id: str
    n: int  # responses sampled
    c: int  # responses accepted
    metadata: dict[str, Any] = field(default_factory=dict)
    verdicts: dict[str, int] = field(default_factory=dict)  # verdict -> count


def _mean_pass(results: list[ProblemResult], ks: list[int]) -> dict[str, float]:
    return {f"pass@{k}": sum(pass_at_k(r.n, r.c, k) for r in results) / len(results) for k in ks}


def _group(results: list[ProblemResult], key: str) -> dict[str, list[ProblemResult]]:
    groups: dict[str, list[ProblemResult]] = defaultdict(list)
    for r in results:
        groups[str(r.metadata.get(key) or "unknown")].append(r)
    return dict(sorted(groups.items()))


def build_report(results: list[ProblemResult], ks: list[int], window: dict[str, str | None] | None = None
                 ) -> dict[str, Any]:
    if not results:
        raise ValueError("no problems to report on; check the problems file and the date window")
    too_few = [r.problem_id for r in results if r.n < max(ks)]
    if too_few:
        raise ValueError(f"pass@{max(ks)} needs at least {max(ks)} samples per problem; "
                         f"problems {too_few[:5]} have fewer")
    verdicts: dict[str, int] = defaultdict(int)
    for r in results:
        for verdict, count in r.verdicts.items():
            verdicts[verdict] += count
    report: dict[str, Any] = {
        "num_problems": len(results),
        "window": window or {"date_from": None, "date_to": None},
        "overall": _mean_pass(results, ks),
        "verdicts": dict(sorted(verdicts.items())),
        "per_problem": [{"id": r.problem_id, "n": r.n, "c": r.c, **{k: r.metadata.get(k) for k in BREAKDOWNS}}
                        for r in results],
    }
    for key in BREAKDOWNS:
        report[f"by_{key}"] = {name: {"num_problems": len(group), **_mean_pass(group, ks)}
                               for name, group in _group(results, key).items()}
    return report


def format_table(report: dict[str, Any]) -> str:
    metrics = list(report["overall"])
    rows = [("overall", report["num_problems"], report["overall"])]
    for key in BREAKDOWNS:
        rows += [(f"{key}={name}", group["num_problems"], group) for name, group in report[f"by_{key}"].items()]
    label_width = max(len(r[0]) for r in rows)
    header = f"{'':<{label_width}}  {'problems':>8}" + "".join(f"  {m:>8}" for m in metrics)
    lines = [header, "-" * len(header)]
    for label, count, values in rows:
        lines.append(f"{label:<{label_width}}  {count:>8}" + "".join(f"  {100 * values[m]:>7.2f}%" for m in metrics))
    window = report["window"]
    if window.get("date_from") or window.get("date_to"):
        lines.append(f"contest dates in [{window.get('date_from') or '-'}, {window.get('date_to') or '-'})")
    return "\n".join(lines)
