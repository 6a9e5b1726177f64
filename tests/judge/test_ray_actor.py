"""The pool inside Ray actors, sync and asyncio, as the RL loop uses it."""
import os

import pytest
from rollout.local_ray import init_local_ray

pytestmark = [pytest.mark.distributed, pytest.mark.slow]

ray = pytest.importorskip("ray")

SUM = {"id": "sum", "kind": "stdio", "tests": [{"input": "1 2\n", "output": "3\n"}, {"input": "4 4\n", "output": "8\n"}]}
CORRECT = "a, b = map(int, input().split())\nprint(a + b)\n"


@pytest.fixture(scope="module")
def ray_cluster():
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    init_local_ray(num_cpus=2, log_to_driver=False)
    yield
    ray.shutdown()


def test_sync_and_async_actors_judge_with_their_own_pool(ray_cluster):
    @ray.remote
    class SyncJudge:
        def __init__(self):
            from judge import JudgePool

            self.pool = JudgePool(workers=1)

        def judge(self, problem, code):
            from judge import Problem

            return self.pool.judge(Problem.from_dict(problem), code).to_dict()

    @ray.remote
    class AsyncJudge:
        def __init__(self):
            from judge import JudgePool

            self.pool = JudgePool(workers=1)

        async def judge_all(self, problem, codes):
            import asyncio

            from judge import Problem

            p = Problem.from_dict(problem)
            results = await asyncio.gather(*(self.pool.submit(p, code) for code in codes))
            return [r.verdict.value for r in results]

    sync_judge, async_judge = SyncJudge.remote(), AsyncJudge.remote()
    row = ray.get(sync_judge.judge.remote(SUM, CORRECT), timeout=120)
    assert row["verdict"] == "AC" and row["passed"] == 2
    verdicts = ray.get(async_judge.judge_all.remote(SUM, [CORRECT, "print(3)\n", CORRECT]), timeout=120)
    assert verdicts == ["AC", "WA", "AC"]
