"""HTTP judge service for a remote judge pool (aiohttp).

  POST /judge   {"problem": {...normalized problem...} | "problem_id": str, "code": str,
                 "language": "python" | "cpp" | "c++17" | "c++20" | ..., "all_tests": false}
                -> 200 result JSON; 400 {"error"} for a bad request; 503 {"error"} when the queue is full
  GET /health   -> {"status": "ok", "workers", "in_flight", "capacity", "cpp_std", "time_limit_scale", "cpus"}

The pool's settings (judge/runner.py JudgeSettings) apply to every request: time limits are the problems'
times time_limit_scale, and cpp_std (null: the compiler's default) compiles C++ where the problem names none.

The queue is bounded: at most workers + max_queue submissions are in flight; beyond that the service
answers 503 with Retry-After at once instead of letting requests pile up.
"""
from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from judge.affinity import AUTO, CpuChoice
from judge.pool import JudgePool
from judge.problem import Problem, ProblemError
from judge.runner import normalize_language

_POOL = web.AppKey("pool", JudgePool)
_CONFIG = web.AppKey("config", dict)


def create_app(pool: JudgePool, max_queue: int, problems: dict[str, Problem] | None = None) -> web.Application:
    app = web.Application(client_max_size=256 << 20)
    app[_POOL] = pool
    app[_CONFIG] = {"capacity": pool.workers + max_queue, "problems": problems or {}}
    app.router.add_post("/judge", _judge)
    app.router.add_get("/health", _health)
    return app


async def _health(request: web.Request) -> web.Response:
    pool, config = request.app[_POOL], request.app[_CONFIG]
    return web.json_response({"status": "ok", "workers": pool.workers, "in_flight": pool.in_flight,
                              "capacity": config["capacity"], "cpp_std": pool.settings.cpp_std,
                              "time_limit_scale": pool.settings.time_limit_scale, "cpus": pool.cpus})


async def _judge(request: web.Request) -> web.Response:
    pool, config = request.app[_POOL], request.app[_CONFIG]
    try:
        problem, code, language, all_tests = _parse(await request.read(), config["problems"])
    except (ValueError, ProblemError) as e:
        return web.json_response({"error": str(e)}, status=400)
    if pool.in_flight >= config["capacity"]:
        return web.json_response(
            {"error": f"queue full: {pool.in_flight} submissions in flight (capacity {config['capacity']}); retry later"},
            status=503, headers={"Retry-After": "1"},
        )
    result = await pool.submit(problem, code, language, all_tests)
    return web.json_response(result.to_dict())


def _parse(body: bytes, problems: dict[str, Problem]) -> tuple[Problem, str, str, bool]:
    try:
        request: Any = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"request body is not valid JSON ({e})") from None
    if not isinstance(request, dict):
        raise ValueError("request body must be a JSON object")
    if "problem" in request:
        problem = Problem.from_dict(request["problem"], where="request key 'problem'")
    elif "problem_id" in request:
        if request["problem_id"] not in problems:
            raise ValueError(f"request key 'problem_id': unknown problem {request['problem_id']!r}")
        problem = problems[request["problem_id"]]
    else:
        raise ValueError("request needs key 'problem' (a problem object) or 'problem_id'")
    code = request.get("code")
    if not isinstance(code, str):
        raise ValueError("request key 'code' must be a string")
    language = request.get("language", "python")
    normalize_language(language)  # an unknown language is this request's error; the name itself may fix a C++ standard
    return problem, code, language, bool(request.get("all_tests", False))


def serve(host: str, port: int, workers: int, max_queue: int, problems: dict[str, Problem],
          cpp_std: str | None = None, time_limit_scale: float = 1.0, cpus: CpuChoice = AUTO) -> None:
    pool = JudgePool(workers=workers, cpp_std=cpp_std, time_limit_scale=time_limit_scale, cpus=cpus)
    app = create_app(pool, max_queue, problems)

    async def close_pool(_app: web.Application) -> None:
        pool.close()

    app.on_cleanup.append(close_pool)
    web.run_app(app, host=host, port=port, print=lambda line: print(line, flush=True))
