"""The judging API: a bounded pool of workers, each a thread driving its own zygotes (one per flavor,
see judge/zygote.py).

Built for the RL loop: rollout code submits responses as they finish (`submit_future` from any thread,
`await submit(...)` from any event loop), batches go through `judge_many` / `judge_iter`. Work is
scheduled per submission (its tests run in order on one zygote, so early stop costs nothing); the
workers never hold the GIL while a test runs. Safe inside Ray actors: no fork of the caller, no
signals, no event loop of its own.

    with JudgePool(workers=4) as pool:
        results = pool.judge_many([(problem, code, "python"), ...])
    reward = reward_from_result(judge_submission(problem, code, "cpp"))

Pool-wide settings (judge/runner.py JudgeSettings): `cpp_std` compiles C++ as that standard where the
problem names none; `time_limit_scale` multiplies every problem's time limit, for slow or contended machines.
`cpus`: each worker's zygotes and test children run on one CPU of these, round robin (judge/affinity.py; by
default every CPU this process may use when there are as many workers, else not pinned; None: not pinned).
"""
from __future__ import annotations

import asyncio
import atexit
import os
import queue
import threading
import time
from concurrent.futures import Future, as_completed
from dataclasses import dataclass
from typing import Iterable, Iterator

from judge.affinity import AUTO, CpuChoice, cpu_for, worker_cpus
from judge.problem import Problem
from judge.runner import JudgeSettings, judge_on, normalize_language, system_error
from judge.verdict import JudgeResult
from judge.zygote import Zygote, flavor_for

Submission = tuple[Problem, str, str]  # (problem, code, language)


def default_workers() -> int:
    return len(os.sched_getaffinity(0))


@dataclass
class _Job:
    problem: Problem
    code: str
    language: str
    all_tests: bool
    future: Future


class JudgePool:
    def __init__(self, workers: int | None = None, cpp_std: str | None = None, time_limit_scale: float = 1.0,
                 cpus: CpuChoice = AUTO) -> None:
        self.workers = workers or default_workers()
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        self.cpus = worker_cpus(cpus, self.workers)  # worker i runs on cpu_for(i, self.cpus); None: not pinned
        self.settings = JudgeSettings(cpp_std, time_limit_scale)
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._in_flight = 0
        self._count_lock = threading.Lock()
        self._closed = False
        self._zygotes: dict[tuple[int, str], Zygote] = {}
        self._threads = [
            threading.Thread(target=self._work, args=(i,), name=f"mc-judge-worker-{i}", daemon=True)
            for i in range(self.workers)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def in_flight(self) -> int:
        """Submissions queued or being judged."""
        return self._in_flight

    @property
    def zygote_pids(self) -> list[int]:
        """Process ids of the live zygotes (for monitoring)."""
        return [z.info["pid"] for z in list(self._zygotes.values()) if z.alive]

    def submit_future(self, problem: Problem, code: str, language: str = "python",
                      all_tests: bool = False) -> Future:
        """Queue one submission; thread-safe. Raises ValueError for an unknown language at once."""
        if self._closed:
            raise RuntimeError("this JudgePool is closed")
        normalize_language(language)
        future: Future = Future()
        with self._count_lock:
            self._in_flight += 1
        future.add_done_callback(self._done)
        self._jobs.put(_Job(problem, code, language, all_tests, future))
        return future

    async def submit(self, problem: Problem, code: str, language: str = "python",
                     all_tests: bool = False) -> JudgeResult:
        return await asyncio.wrap_future(self.submit_future(problem, code, language, all_tests))

    def judge(self, problem: Problem, code: str, language: str = "python", all_tests: bool = False) -> JudgeResult:
        return self.submit_future(problem, code, language, all_tests).result()

    def judge_iter(self, submissions: Iterable[Submission], all_tests: bool = False) -> Iterator[tuple[int, JudgeResult]]:
        """(index, result) pairs in completion order."""
        futures = {self.submit_future(p, c, lang, all_tests): i for i, (p, c, lang) in enumerate(submissions)}
        for future in as_completed(futures):
            yield futures[future], future.result()

    def judge_many(self, submissions: Iterable[Submission], all_tests: bool = False) -> list[JudgeResult]:
        """Results in submission order."""
        results: dict[int, JudgeResult] = dict(self.judge_iter(submissions, all_tests))
        return [results[i] for i in range(len(results))]

    def close(self) -> None:
        """Stop: queued submissions are cancelled, running ones finish, zygotes exit."""
        if self._closed:
            return
        self._closed = True
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job.future.cancel()
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()

    def __enter__(self) -> JudgePool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _done(self, _future: Future) -> None:
        with self._count_lock:
            self._in_flight -= 1

    def _work(self, index: int) -> None:
        zygotes: dict[str, Zygote] = {}
        cpu = cpu_for(index, self.cpus)
        while (job := self._jobs.get()) is not None:
            if not job.future.set_running_or_notify_cancel():
                continue
            start = time.monotonic()
            flavor = flavor_for(normalize_language(job.language), job.code)
            try:
                zygote = zygotes.get(flavor)
                if zygote is None or not zygote.alive:
                    zygote = zygotes[flavor] = self._zygotes[(index, flavor)] = Zygote(flavor, cpu)
                result = judge_on(zygote, job.problem, job.code, job.language, job.all_tests, self.settings)
            except Exception as e:  # noqa: BLE001 - a judge failure is this submission's SE, not a dead worker
                if flavor in zygotes:
                    zygotes.pop(flavor).close()  # its state is unknown now; the next job starts a fresh one
                    self._zygotes.pop((index, flavor), None)
                result = system_error(job.problem, e, time.monotonic() - start)
            job.future.set_result(result)
        for zygote in zygotes.values():
            zygote.close()


_default_pool: JudgePool | None = None
_default_lock = threading.Lock()


def default_pool() -> JudgePool:
    """One process-wide pool, sized to the machine, created on first use."""
    global _default_pool
    with _default_lock:
        if _default_pool is None:
            _default_pool = JudgePool()
            atexit.register(_default_pool.close)
        return _default_pool


def judge_submission(problem: Problem, code: str, language: str = "python", all_tests: bool = False) -> JudgeResult:
    return default_pool().judge(problem, code, language, all_tests)


async def judge_submission_async(problem: Problem, code: str, language: str = "python",
                                 all_tests: bool = False) -> JudgeResult:
    return await default_pool().submit(problem, code, language, all_tests)
