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


def staleness(samples: list[Sample], trained_version: int) -> dict[str, float]:
    """How far behind the trained policy (`trained_version`) the tokens were sampled: version lag per token
    (0 everywhere when synchronous), the share of off-policy tokens, and the samples that mix versions (a
    generation continued across a weight update)."""
    lags = [trained_version - v for s in samples for v in s.versions]
    if not lags:
        return {"async/staleness_mean": 0.0, "async/staleness_max": 0.0, "async/off_policy_token_fraction": 0.0,
                "async/mixed_version_samples": 0.0}
    return {"async/staleness_mean": sum(lags) / len(lags), "async/staleness_max": float(max(lags)),
            "async/off_policy_token_fraction": sum(lag > 0 for lag in lags) / len(lags),
            "async/mixed_version_samples": float(sum(len(set(s.versions)) > 1 for s in samples))}
