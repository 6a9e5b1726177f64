"""Merging what the ranks return into what the driver sees."""
from __future__ import annotations

import math


def merge_logprobs(per_rank: list[dict[int, list[float]]], n: int) -> list[list[float]]:
    merged: dict[int, list[float]] = {}
    for rows in per_rank:
        merged.update(rows)
    missing = [i for i in range(n) if i not in merged]
    if missing:
        raise RuntimeError(f"no rank returned log-probs for batch positions {missing[:10]}")
    return [merged[i] for i in range(n)]


def merge_train_metrics(per_rank: list[dict]) -> dict[str, float]:
    """Token-weighted means of the micro-batch metrics over every rank and optimizer step, the mean
    grad_norm and the last lr of the optimizer steps, and the number of response tokens trained on."""
    totals: dict[str, float] = {}
    weights: dict[str, float] = {}
    tokens = 0
    for rank in per_rank:
        for weight, metrics in rank["records"]:
            tokens += weight
            for key, value in metrics.items():
                if math.isfinite(value):
                    totals[key] = totals.get(key, 0.0) + weight * value
                    weights[key] = weights.get(key, 0.0) + weight
    merged = {key: totals[key] / weights[key] for key in totals if weights[key] > 0}
    steps = per_rank[0]["steps"]  # the same on every rank: grad norm and lr are global
    merged["grad_norm"] = sum(s["grad_norm"] for s in steps) / len(steps)
    merged["lr"] = steps[-1]["lr"]
    merged["tokens"] = float(tokens)
    merged["optimizer_steps"] = float(len(steps))
    return merged
