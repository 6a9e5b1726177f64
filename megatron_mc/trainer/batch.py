"""What the driver hands the trainer for one RL step (or one SFT step): plain lists, Ray-serializable."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Optional


@dataclass
class TrainBatch:
    prompt_ids: list[list[int]]
    response_ids: list[list[int]]
    advantages: list[float]  # one per sequence
    rollout_logprobs: Optional[list[list[float]]]  # the engine's, per response token
    temperature: float  # log-probs are taken at logits / temperature
    old_logprobs: Optional[list[list[float]]] = None  # the trainer's, before this step's updates
    ref_logprobs: Optional[list[list[float]]] = None  # the reference policy's, when the KL loss is on
    # per sequence, the engine's expert choices (rollout/routed_experts.py) for routing replay, else None
    routed_experts: Optional[list[Optional[str]]] = None

    def __post_init__(self) -> None:
        n = len(self.prompt_ids)
        if len(self.response_ids) != n or len(self.advantages) != n:
            raise ValueError(f"TrainBatch: {n} prompts, {len(self.response_ids)} responses and "
                             f"{len(self.advantages)} advantages; give one of each per sequence")
        if self.temperature <= 0:
            raise ValueError(f"TrainBatch: temperature must be > 0, got {self.temperature}")
        for field_name in ("rollout_logprobs", "old_logprobs", "ref_logprobs"):
            per_token = getattr(self, field_name)
            if per_token is None:
                continue
            for i, (values, response) in enumerate(zip(per_token, self.response_ids)):
                if len(values) != len(response):
                    raise ValueError(f"TrainBatch.{field_name}[{i}]: {len(values)} values for "
                                     f"{len(response)} response tokens")
            if len(per_token) != n:
                raise ValueError(f"TrainBatch.{field_name}: {len(per_token)} rows for {n} sequences")
        if self.routed_experts is not None and len(self.routed_experts) != n:
            raise ValueError(f"TrainBatch.routed_experts: {len(self.routed_experts)} rows for {n} sequences")
        for i, response in enumerate(self.response_ids):
            if not response:
                raise ValueError(f"TrainBatch.response_ids[{i}] is empty; drop empty responses before training")

    def __len__(self) -> int:
        return len(self.prompt_ids)

    @classmethod
    def from_samples(cls, samples: Sequence, advantages: Sequence[float], temperature: float) -> "TrainBatch":
        """From rollout.Sample objects (prompt, response, rollout log-probs and, when the engine returned them,
        routed experts) and one advantage each."""
        if len(samples) != len(advantages):
            raise ValueError(f"TrainBatch.from_samples: {len(samples)} samples but {len(advantages)} advantages")
        return cls(prompt_ids=[list(s.prompt_ids) for s in samples],
                   response_ids=[list(s.response_ids) for s in samples],
                   advantages=[float(a) for a in advantages],
                   rollout_logprobs=[list(s.rollout_logprobs) for s in samples],
                   temperature=float(temperature),
                   routed_experts=[s.routed_experts for s in samples]
                   if any(s.routed_experts is not None for s in samples) else None)

    @classmethod
    def for_sft(cls, prompt_ids: Sequence[Sequence[int]], response_ids: Sequence[Sequence[int]]) -> "TrainBatch":
        """Supervised pairs: advantages all 1, temperature 1, trained with the SFT loss."""
        return cls(prompt_ids=[list(p) for p in prompt_ids], response_ids=[list(r) for r in response_ids],
                   advantages=[1.0] * len(prompt_ids), rollout_logprobs=None, temperature=1.0)

    def select(self, indices: Sequence[int]) -> "TrainBatch":
        """The sequences at `indices`, in that order."""
        def pick(rows):
            return None if rows is None else [rows[i] for i in indices]

        return replace(self, prompt_ids=pick(self.prompt_ids), response_ids=pick(self.response_ids),
                       advantages=pick(self.advantages), rollout_logprobs=pick(self.rollout_logprobs),
                       old_logprobs=pick(self.old_logprobs), ref_logprobs=pick(self.ref_logprobs),
                       routed_experts=pick(self.routed_experts))
