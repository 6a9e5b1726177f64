"""The run's problems as the loop consumes them: judge time limits scaled, drawn one at a time from the
sampler so its saved position is exactly the number of problems the run has taken."""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from judge.problem import Problem
from megatron_mc.data.sampler import ProblemSampler


def scale_time_limits(problems: list[Problem], scale: float) -> list[Problem]:
    if scale == 1.0:
        return problems
    return [dataclasses.replace(p, time_limit_s=p.time_limit_s * scale) for p in problems]


class ProblemStream(Iterator[Problem]):
    """An endless iterator over the sampler's order; `take_drawn()` returns (and forgets) what was drawn.

    RolloutManager pulls as many problems as dynamic sampling needs, one by one, so nothing is drawn
    that is not used and the sampler state saved after a step replays the following problems exactly.
    """

    def __init__(self, problems: list[Problem], sampler: ProblemSampler):
        if sampler.num_problems != len(problems):
            raise ValueError(f"the sampler covers {sampler.num_problems} problems but the run has {len(problems)}")
        self.problems = problems
        self.sampler = sampler
        self._drawn: list[str] = []

    def __next__(self) -> Problem:
        problem = self.problems[self.sampler.next_batch(1)[0]]
        self._drawn.append(problem.id)
        return problem

    def take_drawn(self) -> list[str]:
        drawn, self._drawn = self._drawn, []
        return drawn
