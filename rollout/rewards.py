"""Reward for one sample from the judge: extract the program, run it on the problem's tests."""
from __future__ import annotations

from judge.extract import extract_code
from judge.problem import Problem
from judge.verdict import reward_from_result
from rollout.sample import Sample

NO_CODE = {"verdict": "no_code", "passed": 0, "total": 0}


class JudgeReward:
    """Scores samples through a judge.pool.JudgePool; a response without a program gets 0 unjudged."""

    def __init__(self, pool):
        self.pool = pool

    async def __call__(self, problem: Problem, sample: Sample) -> tuple[float, dict]:
        found = extract_code(sample.response_text)
        if found is None:
            return 0.0, dict(NO_CODE)
        code, language = found
        result = await self.pool.submit(problem, code, language)
        return reward_from_result(result), result.to_dict()
