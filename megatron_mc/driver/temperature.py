"""Where each step's sampling temperature comes from, chosen in one place (`make_temperature_source`).

  fixed      rollout.temperature, every step
  diversity  MicroCoder's controller (rollout.TemperatureController): at each stage boundary it samples a
             fixed probe set (the first rollout.temperature_probe_problems training problems) at the
             candidate temperatures and keeps the lowest whose diversity reaches rollout.target_diversity

The trainer divides logits by the same temperature, so the policy ratio is computed where the samples
were drawn. The controller is on exactly when rollout.target_diversity is set.
"""
from __future__ import annotations

from typing import Any

from judge.problem import Problem
from megatron_mc.config import RunConfig
from rollout.manager import RolloutManager
from rollout.temperature import TemperatureController


class FixedTemperature:
    def __init__(self, temperature: float):
        self.temperature = temperature

    async def for_step(self, step: int, manager: RolloutManager) -> float:
        return self.temperature

    def state_dict(self) -> dict[str, Any]:
        return {"kind": "fixed", "temperature": self.temperature}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """A fixed temperature has nothing to restore; a resumed run uses the config's value."""


class DiversityTemperature:
    def __init__(self, controller: TemperatureController, probe_problems: list[Problem]):
        self.controller = controller
        self.probe_problems = probe_problems

    async def for_step(self, step: int, manager: RolloutManager) -> float:
        async def sample(temperature: float) -> list[list[list[int]]]:
            return await manager.probe(self.probe_problems, temperature)

        return await self.controller.temperature_for_step(step, sample)

    def state_dict(self) -> dict[str, Any]:
        return {"kind": "diversity", **self.controller.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("kind") != "diversity":
            raise ValueError(f"the checkpoint's temperature state is {state.get('kind')!r} but this run sets "
                             "rollout.target_diversity (diversity); resume with the checkpoint's rollout settings")
        self.controller.load_state_dict({k: v for k, v in state.items() if k != "kind"})


def make_temperature_source(cfg: RunConfig, train_problems: list[Problem]) -> FixedTemperature | DiversityTemperature:
    controller = TemperatureController.from_config(cfg.rollout)
    if controller is None:
        return FixedTemperature(cfg.rollout.temperature)
    return DiversityTemperature(controller, train_problems[:cfg.rollout.temperature_probe_problems])
