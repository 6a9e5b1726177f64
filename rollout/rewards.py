"""Reward for one sample from the judge: extract the program, run it on the problem's tests."""
from __future__ import annotations

from judge.problem import Problem
from rollout.sample import Sample

NO_CODE = {"verdict": "no_code", "passed": 0, "total": 0}


class JudgeReward:
    """Scores samples through a judge.pool.JudgePool; a response without a program gets 0 unjudged."""

    def __init__(self, pool):
        from judge.pool import reward_from_result

        self.pool = pool
        self._reward_from_result = reward_from_result

    async def __call__(self, problem: Problem, sample: Sample) -> tuple[float, dict]:
        from judge.extract import extract_code

        found = extract_code(sample.response_text)
        if found is None:
            return 0.0, dict(NO_CODE)
        code, language = found
        result = await self.pool.submit(problem, code, language)
        return float(self._reward_from_result(result)), result.to_dict()
