"""The per-step figures the loop logs beside rollout's, algo's and the trainer's own metrics."""
from __future__ import annotations

from rollout.sample import Sample

ACCEPTED = "AC"


def pass_rate(samples: list[Sample]) -> float:
    return sum(s.verdict.get("verdict") == ACCEPTED for s in samples) / len(samples) if samples else 0.0


def logprob_diff(rollout_logprobs: list[list[float]], train_logprobs: list[list[float]]) -> dict[str, float]:
    """How far the trainer's log-probs of the sampled tokens are from the engine's (same weights, same
    temperature): a large gap means the two disagree on the model, the tokenizer or the temperature."""
    diffs = []
    for index, (engine, trainer) in enumerate(zip(rollout_logprobs, train_logprobs, strict=True)):
        if len(engine) != len(trainer):
            raise ValueError(f"sample {index}: {len(trainer)} trainer log-probs for {len(engine)} response tokens")
        diffs.extend(abs(a - b) for a, b in zip(engine, trainer))
    if not diffs:
        return {"train/logprob_diff_mean": 0.0, "train/logprob_diff_max": 0.0}
    return {"train/logprob_diff_mean": sum(diffs) / len(diffs), "train/logprob_diff_max": max(diffs)}


def prefixed(prefix: str, metrics: dict[str, float]) -> dict[str, float]:
    """`prefix/name` for names that carry no section yet."""
    return {(k if "/" in k else f"{prefix}/{k}"): v for k, v in metrics.items()}
