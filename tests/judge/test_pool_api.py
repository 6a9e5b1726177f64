"""The Python API: sync and async, single and batch, thread safety, recovery from a dead zygote."""
import asyncio
import threading
import time

import psutil
import pytest

from judge import JudgePool, Verdict, judge_submission, judge_submission_async, reward_from_result
from judge_test_helpers import SUM_TESTS, stdio_problem

CORRECT = "a, b = map(int, input().split())\nprint(a + b)\n"
WRONG = "print(0)\n"


def test_judge_submission_sync_and_async():
    problem = stdio_problem(SUM_TESTS)
    assert judge_submission(problem, CORRECT, "python").verdict is Verdict.AC
    result = asyncio.run(judge_submission_async(problem, WRONG, "python"))
    assert result.verdict is Verdict.WA and reward_from_result(result) == 0.0


def test_judge_many_keeps_submission_order(judge_pool):
    problem = stdio_problem(SUM_TESTS)
    codes = [CORRECT if i % 3 else WRONG for i in range(12)]
    results = judge_pool.judge_many([(problem, code, "python") for code in codes])
    assert [r.verdict for r in results] == [Verdict.AC if i % 3 else Verdict.WA for i in range(12)]


def test_async_submit_from_an_event_loop_and_from_threads(judge_pool):
    problem = stdio_problem(SUM_TESTS)

    async def many():
        return await asyncio.gather(*(judge_pool.submit(problem, CORRECT if i % 2 else WRONG) for i in range(6)))

    assert [r.verdict for r in asyncio.run(many())] == [Verdict.WA, Verdict.AC] * 3
    verdicts = {}

    def submit(i):
        verdicts[i] = judge_pool.judge(problem, CORRECT).verdict

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert verdicts == {i: Verdict.AC for i in range(4)}


def test_unknown_language_is_rejected_at_submission():
    with JudgePool(workers=1) as pool, pytest.raises(ValueError, match="unknown language"):
        pool.submit_future(stdio_problem(SUM_TESTS), CORRECT, "fortran")


def test_a_killed_zygote_is_replaced_and_judging_goes_on():
    problem = stdio_problem(SUM_TESTS)
    with JudgePool(workers=1) as pool:
        assert pool.judge(problem, CORRECT).verdict is Verdict.AC
        [pid] = pool.zygote_pids
        zygote = psutil.Process(pid)
        zygote.kill()
        zygote.wait(10)
        results = [pool.judge(problem, CORRECT).verdict for _ in range(2)]
        assert results[-1] is Verdict.AC and set(results) <= {Verdict.AC, Verdict.SE}
        assert pool.zygote_pids != [pid] and len(pool.zygote_pids) == 1


def test_close_cancels_queued_submissions_and_finishes_running_ones():
    problem = stdio_problem(SUM_TESTS, time_limit_s=2.0)
    pool = JudgePool(workers=1)
    running = pool.submit_future(problem, "import time\ntime.sleep(0.5)\n" + CORRECT)
    queued = [pool.submit_future(problem, CORRECT) for _ in range(5)]
    while not running.running():
        time.sleep(0.01)
    pool.close()
    assert running.result().verdict is Verdict.AC
    assert all(f.cancelled() for f in queued)
    assert pool.in_flight == 0
