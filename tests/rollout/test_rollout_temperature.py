"""The temperature search on a model whose diversity is known in closed form.

The model draws each response token independently from softmax(logits / T). For a group of G responses of
L tokens, the expected number of distinct tokens is sum_v 1 - (1 - p_v)^(G*L), so expected distinct-1 is
known at every temperature; the target is put halfway between two candidates' expected diversities and the
search must pick the upper one. Sharpening the logits (what training does) must make the staged schedule
raise the temperature at the next stage boundary, and never between boundaries.
"""
from __future__ import annotations

import asyncio

import torch

from rollout.config import RolloutConfig
from rollout.temperature import TemperatureController, search_temperature

VOCAB, LENGTH, GROUP, PROBE_GROUPS = 64, 8, 4, 96
CANDIDATES = [0.5, 0.75, 1.0, 1.5, 2.0]


class UnigramModel:
    def __init__(self, sharpness: float, seed: int = 0):
        self.logits = -sharpness * torch.arange(VOCAB, dtype=torch.float64) / 4
        self.generator = torch.Generator().manual_seed(seed)
        self.probes = 0

    def expected_distinct_1(self, temperature: float) -> float:
        p = torch.softmax(self.logits / temperature, -1)
        draws = GROUP * LENGTH
        return float((1 - (1 - p) ** draws).sum() / draws)

    async def sample_groups(self, temperature: float) -> list[list[list[int]]]:
        self.probes += 1
        p = torch.softmax(self.logits / temperature, -1)
        tokens = torch.multinomial(p, PROBE_GROUPS * GROUP * LENGTH, replacement=True, generator=self.generator)
        return tokens.view(PROBE_GROUPS, GROUP, LENGTH).tolist()


def halfway_target(model: UnigramModel, upper: float) -> float:
    lower = CANDIDATES[CANDIDATES.index(upper) - 1]
    return (model.expected_distinct_1(lower) + model.expected_distinct_1(upper)) / 2


def test_search_picks_the_lowest_temperature_whose_known_diversity_meets_the_target():
    model = UnigramModel(sharpness=1.0)
    expected = [model.expected_distinct_1(t) for t in CANDIDATES]
    assert expected == sorted(expected) and expected[-1] - expected[0] > 0.2, "diversity must rise with T"
    for right in (0.75, 1.0, 1.5):
        result = asyncio.run(search_temperature(model.sample_groups, CANDIDATES, halfway_target(model, right), 1))
        assert result.temperature == right, result.diversity
        for t, measured in result.diversity.items():
            assert abs(measured - model.expected_distinct_1(t)) < 0.03
        assert max(result.diversity) == right, "the search stops at the first temperature that meets the target"
        assert all(0 <= s <= 1 for s in result.self_similarity.values())


def test_staged_schedule_raises_the_temperature_only_at_stage_boundaries_and_resumes():
    model = UnigramModel(sharpness=1.0)
    target = halfway_target(model, 1.0)
    controller = TemperatureController(target, CANDIDATES, stage_steps=10, ngram=1)

    async def run_steps(ctrl, steps):
        return [await ctrl.temperature_for_step(step, model.sample_groups) for step in steps]

    assert asyncio.run(run_steps(controller, range(0, 10))) == [1.0] * 10
    probes_after_first_stage = model.probes
    model.logits = model.logits * 1.6  # training sharpened the policy: diversity fell at every T
    assert model.expected_distinct_1(1.0) < target <= model.expected_distinct_1(1.5)
    assert asyncio.run(run_steps(controller, range(10, 15))) == [1.5] * 5
    assert model.probes > probes_after_first_stage

    resumed = TemperatureController(target, CANDIDATES, stage_steps=10, ngram=1)
    resumed.load_state_dict(controller.state_dict())
    probes = model.probes
    assert asyncio.run(run_steps(resumed, range(15, 20))) == [1.5] * 5
    assert model.probes == probes, "a resumed controller does not search again before its stage ends"
    assert [h["chosen"] for h in resumed.history] == [1.0, 1.5]

    model.logits = model.logits / 4  # much more diverse now: the search would pick a lower T, the schedule holds
    assert asyncio.run(run_steps(resumed, [20])) == [1.5]
    assert resumed.history[-1]["searched"] < 1.5


def test_controller_from_config():
    assert TemperatureController.from_config(RolloutConfig()) is None
    controller = TemperatureController.from_config(RolloutConfig(target_diversity=0.4, temperature_stage_steps=7))
    assert (controller.target_diversity, controller.stage_steps) == (0.4, 7)
    assert controller.candidates == RolloutConfig().temperature_candidates
