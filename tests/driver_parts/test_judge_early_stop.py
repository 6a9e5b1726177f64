"""judge.stop_at_first_failure through the RL reward: JudgeReward on a real JudgePool (real sandbox)."""
import asyncio

import pytest

from judge.pool import JudgePool
from judge.problem import Problem, TestCase
from rollout.rewards import JudgeReward
from rollout.sample import Sample

# Four sums; the solution below is wrong on the first only.
PROBLEM = Problem(id="sum", kind="stdio", time_limit_s=2.0, memory_limit_mb=256,
                  tests=[TestCase(f"{a} {b}\n", f"{a + b}\n") for a, b in ((10, 1), (1, 2), (3, 4), (5, 6))])
WRONG_ON_FIRST = "a, b = map(int, input().split())\nprint(a + b if a != 10 else 0)\n"


def _sample(code: str) -> Sample:
    return Sample("sum", 0, [1], [2], [0.0], "stop", 1.0, 0, response_text=f"```python\n{code}```\n")


@pytest.fixture(scope="module")
def pool():
    with JudgePool(1) as judge_pool:
        yield judge_pool


@pytest.mark.parametrize("stop_at_first_failure, passed, ran", [(True, 0, 1), (False, 3, 4)])
def test_stop_at_first_failure_decides_how_many_tests_run(pool, stop_at_first_failure, passed, ran):
    reward, verdict = asyncio.run(JudgeReward(pool, stop_at_first_failure)(PROBLEM, _sample(WRONG_ON_FIRST)))
    assert reward == 0.0 and verdict["verdict"] == "WA"
    assert (verdict["passed"], verdict["total"], len(verdict["tests"])) == (passed, 4, ran)


def test_default_stops_at_the_first_failure(pool):
    _, verdict = asyncio.run(JudgeReward(pool)(PROBLEM, _sample(WRONG_ON_FIRST)))
    assert len(verdict["tests"]) == 1
