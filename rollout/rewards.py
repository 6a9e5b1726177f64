"""Reward for one sample from the judge: extract the program, run it on the problem's tests."""
from __future__ import annotations

from judge.extract import extract_code
from judge.problem import Problem
from judge.verdict import reward_from_result
from rollout.sample import Sample

NO_CODE = {"verdict": "no_code", "passed": 0, "total": 0}


class JudgeReward:
    """Scores samples through a judge.pool.JudgePool; a response without a program gets 0 unjudged.

    stop_at_first_failure (judge.stop_at_first_failure): a reward only needs pass/fail, so the tests after
    the first failure are skipped; False runs them all, for verdicts whose passed/total count every test.
    """

    def __init__(self, pool, stop_at_first_failure: bool = True):
        self.pool = pool
        self.stop_at_first_failure = stop_at_first_failure

    async def __call__(self, problem: Problem, sample: Sample) -> tuple[float, dict]:
        found = extract_code(sample.response_text)
        if found is None:
            return 0.0, dict(NO_CODE)
        code, language = found
        result = await self.pool.submit(problem, code, language, all_tests=not self.stop_at_first_failure)
        return reward_from_result(result), result.to_dict()
