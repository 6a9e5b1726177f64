"""MicroCoder's temperature controller: the sampling temperature is chosen from output diversity.

Diversity rises with temperature and falls as training sharpens the policy. At each stage boundary the
controller samples a probe set at the candidate temperatures (ascending) and picks the lowest one whose
diversity (distinct-n, mean over groups) meets the target. Between boundaries the temperature holds; it
moves only between candidate values and never down, so it is raised in steps rather than continuously. The
chosen temperature is also the one the trainer divides logits by.
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from rollout.diversity import distinct_n, mean_over_groups, self_similarity

log = logging.getLogger("rollout.temperature")

# temperature -> the probe set's groups of response token ids sampled at it
ProbeSampler = Callable[[float], Awaitable[list[list[list[int]]]]]


@dataclass
class SearchResult:
    temperature: float
    diversity: dict[float, float] = field(default_factory=dict)
    self_similarity: dict[float, float] = field(default_factory=dict)


async def search_temperature(sample: ProbeSampler, candidates: list[float], target: float, ngram: int) -> SearchResult:
    result = SearchResult(temperature=candidates[-1])
    for temperature in candidates:
        groups = await sample(temperature)
        result.diversity[temperature] = mean_over_groups(groups, distinct_n, ngram)
        result.self_similarity[temperature] = mean_over_groups(groups, self_similarity, ngram)
        if result.diversity[temperature] >= target:
            result.temperature = temperature
            break
    log.info("temperature search: diversity %s -> %.2f", result.diversity, result.temperature)
    return result


class TemperatureController:
    def __init__(self, target_diversity: float, candidates: list[float], stage_steps: int, ngram: int = 4):
        self.target_diversity = target_diversity
        self.candidates = sorted(candidates)
        self.stage_steps = stage_steps
        self.ngram = ngram
        self.temperature: float | None = None
        self.next_search_step = 0
        self.history: list[dict] = []

    async def temperature_for_step(self, step: int, sample: ProbeSampler) -> float:
        if self.temperature is None or step >= self.next_search_step:
            found = await search_temperature(sample, self.candidates, self.target_diversity, self.ngram)
            self.temperature = max(found.temperature, self.temperature or found.temperature)
            self.next_search_step = step + self.stage_steps
            self.history.append({"step": step, "chosen": self.temperature, "searched": found.temperature,
                                 "diversity": found.diversity, "self_similarity": found.self_similarity})
        return self.temperature

    @classmethod
    def from_config(cls, cfg) -> TemperatureController | None:
        """The controller RolloutConfig describes; None when rollout.target_diversity is unset (the fixed
        rollout.temperature is used)."""
        if cfg.target_diversity is None:
            return None
        return cls(cfg.target_diversity, cfg.temperature_candidates, cfg.temperature_stage_steps, cfg.diversity_ngram)

    def state_dict(self) -> dict:
        return {"temperature": self.temperature, "next_search_step": self.next_search_step,
                "history": list(self.history)}

    def load_state_dict(self, state: dict) -> None:
        self.temperature = state["temperature"]
        self.next_search_step = state["next_search_step"]
        self.history = list(state["history"])
