"""The Sample contract: one response to one prompt, and everything the trainer needs to learn from it.

A group is the G samples of one prompt; `group_index` is a sample's place in its group. Everything between
rollout, judge and trainer speaks in Samples; nothing is passed around as loose dicts.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from rollout.routed_experts import encoded_ints, routed_tokens

FINISH_REASONS = ("stop", "length", "abort")


@dataclass
class Sample:
    problem_id: str
    group_index: int
    prompt_ids: list[int]
    response_ids: list[int]
    rollout_logprobs: list[float]
    finish_reason: str
    temperature: float
    weight_version: int  # the version that sampled the last token
    response_text: str = ""
    reward: float | None = None
    verdict: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    # the engine's expert choices per routed token (rollout/routed_experts.py), for routing replay; else None
    routed_experts: str | None = None
    # the weight version each response token was sampled with, when they differ (a partial rollout continued
    # across a weight update); empty: every token has weight_version
    token_versions: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        where = f"sample {self.problem_id!r}[{self.group_index}]"
        if self.finish_reason not in FINISH_REASONS:
            raise ValueError(f"{where}: finish_reason must be one of {FINISH_REASONS}, got {self.finish_reason!r}")
        if len(self.rollout_logprobs) != len(self.response_ids):
            raise ValueError(
                f"{where}: {len(self.rollout_logprobs)} log-probs for {len(self.response_ids)} response tokens; "
                "the engine must be asked with return_logprob=True"
            )
        if self.routed_experts is not None:
            tokens = routed_tokens(len(self.prompt_ids), len(self.response_ids))
            ints = encoded_ints(self.routed_experts)
            if tokens and (ints == 0 or ints % tokens):
                raise ValueError(f"{where}: routed_experts holds {ints} expert ids, not a multiple of the {tokens} "
                                 "routed tokens (prompt + response - 1); the routes belong to another sequence")
        if self.token_versions and len(self.token_versions) != len(self.response_ids):
            raise ValueError(f"{where}: {len(self.token_versions)} token versions for {len(self.response_ids)} "
                             "response tokens")

    @property
    def key(self) -> tuple[str, int]:
        return (self.problem_id, self.group_index)

    @property
    def versions(self) -> list[int]:
        """The weight version of every response token."""
        return self.token_versions or [self.weight_version] * len(self.response_ids)

    @property
    def oldest_version(self) -> int:
        return min(self.token_versions, default=self.weight_version)

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Sample:
        return cls(**row)


def group_by_problem(samples: list[Sample]) -> dict[str, list[Sample]]:
    """Samples grouped by problem, each group in group_index order."""
    groups: dict[str, list[Sample]] = {}
    for sample in samples:
        groups.setdefault(sample.problem_id, []).append(sample)
    return {pid: sorted(group, key=lambda s: s.group_index) for pid, group in groups.items()}
