"""Async client for SGLang's HTTP API (and the embedded engine, which speaks the same).

`generate` sends one request per sample to `/generate` with input_ids, sampling_params and return_logprob,
under a concurrency bound, with a per-request timeout and retries with exponential backoff. A request
whose engine dies (connection refused or reset, a 5xx from the router) is resubmitted with the same rid
until an engine answers: unfinished requests survive an engine restart, and a sample is produced once.

Requests go to `base_url` (the router, or one engine). Aborts go to every engine in `engine_urls`: neither
sglang-router nor our balancer forwards /abort_request (sglang-router answers 404), and SGLang's abort by
rid is a no-op on an engine that does not hold the request.
"""
from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp

log = logging.getLogger("rollout.client")

# What a dead or restarting engine looks like from here: worth a retry, unlike a 4xx (a bad request).
_RETRYABLE = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError)


class EngineRequestError(RuntimeError):
    """The engine rejected a request, or kept failing after every retry."""


@dataclass
class GenerateOutput:
    rid: str
    output_ids: list[int]
    logprobs: list[float]
    finish_reason: str  # stop | length | abort
    prompt_tokens: int
    completion_tokens: int
    weight_version: str | None
    text: str = ""
    routed_experts: str | None = None  # rollout/routed_experts.py; only when asked for


def generate_payload(input_ids: list[int], sampling_params: dict[str, Any], rid: str,
                     return_logprob: bool = True, return_routed_experts: bool = False) -> dict[str, Any]:
    """The body of one SGLang /generate request (sglang.srt.managers.io_struct.GenerateReqInput)."""
    payload = {"input_ids": list(input_ids), "sampling_params": dict(sampling_params), "rid": rid,
               "return_logprob": return_logprob, "stream": False}
    if return_routed_experts:
        payload["return_routed_experts"] = True
    return payload


def parse_generate_response(body: dict[str, Any], rid: str, routed_experts: bool = False) -> GenerateOutput:
    """`routed_experts`: they were asked for, so a finished answer without them is an error (SGLang leaves
    them out, silently, unless launched with --enable-return-routed-experts)."""
    meta = body["meta_info"]
    output_ids = list(body.get("output_ids") or [])
    entries = meta.get("output_token_logprobs") or []
    if not output_ids and entries:
        output_ids = [int(e[1]) for e in entries]
    if entries and [int(e[1]) for e in entries] != output_ids:
        raise EngineRequestError(f"request {rid}: output_token_logprobs do not match output_ids")
    finish = meta.get("finish_reason") or {"type": "abort"}
    finish_type = finish["type"] if isinstance(finish, dict) else str(finish)
    routes = meta.get("routed_experts")
    if routed_experts and routes is None and finish_type != "abort":
        raise EngineRequestError(f"request {rid}: routed experts were asked for (algo.routing_replay) but none "
                                 "came back; SGLang must be launched with --enable-return-routed-experts and serve "
                                 "a mixture-of-experts model, and the router must forward return_routed_experts "
                                 "(sglang-router 0.3.2 drops it: rollout.router least_outstanding does not)")
    return GenerateOutput(
        rid=rid, output_ids=output_ids, logprobs=[float(e[0]) for e in entries],
        finish_reason=finish_type,
        prompt_tokens=int(meta.get("prompt_tokens", 0)),
        completion_tokens=int(meta.get("completion_tokens", len(output_ids))),
        weight_version=None if meta.get("weight_version") is None else str(meta["weight_version"]),
        text=body.get("text") or "", routed_experts=routes,
    )


class SGLangClient:
    def __init__(self, base_url: str, max_concurrency: int = 256, timeout_s: float = 3600.0,
                 max_retries: int = 5, retry_backoff_s: float = 0.5, max_backoff_s: float = 10.0,
                 engine_urls: list[str] | None = None, return_routed_experts: bool = False):
        """`engine_urls`: the engines behind `base_url`, for aborts; None when `base_url` is one engine.
        `return_routed_experts`: ask every generation for its routes (algo.routing_replay)."""
        self.base_url = base_url.rstrip("/")
        self.engine_urls = [u.rstrip("/") for u in engine_urls] if engine_urls else [self.base_url]
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.retry_backoff_s = retry_backoff_s
        self.max_backoff_s = max_backoff_s
        self.return_routed_experts = return_routed_experts
        self._slots = asyncio.Semaphore(max_concurrency)
        self._session: aiohttp.ClientSession | None = None
        self.retries = 0  # requests resubmitted after an engine failure, for metrics and tests

    async def __aenter__(self) -> SGLangClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                                                  connector=aiohttp.TCPConnector(limit=0))
        return self._session

    async def generate(self, input_ids: list[int], sampling_params: dict[str, Any], rid: str | None = None,
                       return_logprob: bool = True) -> GenerateOutput:
        rid = rid or uuid.uuid4().hex
        payload = generate_payload(input_ids, sampling_params, rid, return_logprob, self.return_routed_experts)
        async with self._slots:
            body = await self.post("/generate", payload)
        return parse_generate_response(body, rid, self.return_routed_experts)

    async def abort(self, rid: str | None = None) -> list[str]:
        """Abort one request by rid, or every request when rid is None (AbortReq in SGLang), on every engine.
        Returns the engines that refused or could not be reached, each logged with its error."""
        payload = {"rid": rid, "abort_all": rid is None}
        failed = await asyncio.gather(*(self._abort_on(url, payload) for url in self.engine_urls))
        return [url for url in failed if url is not None]

    async def _abort_on(self, engine_url: str, payload: dict[str, Any]) -> str | None:
        try:
            async with self._http().post(f"{engine_url}/abort_request", json=payload,
                                         timeout=aiohttp.ClientTimeout(total=30)) as resp:
                await _body(resp, "/abort_request")
            return None
        except (*_RETRYABLE, EngineRequestError) as e:
            log.warning("abort of %s on engine %s failed: %s: %s; it may keep generating until it finishes",
                        payload["rid"] or "every request", engine_url, type(e).__name__, e)
            return engine_url

    async def health(self) -> bool:
        try:
            async with self._http().get(f"{self.base_url}/health",
                                        timeout=aiohttp.ClientTimeout(total=5)) as resp:
                return resp.status == 200
        except _RETRYABLE:
            return False

    async def get(self, path: str) -> Any:
        async with self._http().get(f"{self.base_url}{path}") as resp:
            return await _body(resp, path)

    async def post(self, path: str, payload: dict[str, Any], retry: bool = True) -> Any:
        attempt = 0
        while True:
            try:
                async with self._http().post(f"{self.base_url}{path}", json=payload) as resp:
                    if resp.status < 500 or not retry:
                        return await _body(resp, path)
                    problem = f"HTTP {resp.status}: {(await resp.text())[:200]}"
            except _RETRYABLE as e:
                if not retry:
                    raise
                problem = f"{type(e).__name__}: {e}"
            attempt += 1
            if attempt > self.max_retries:
                raise EngineRequestError(f"POST {self.base_url}{path} failed {attempt} times; last: {problem}")
            self.retries += 1
            delay = min(self.max_backoff_s, self.retry_backoff_s * 2 ** (attempt - 1))
            log.warning("POST %s failed (%s); retry %d/%d in %.1fs", path, problem, attempt, self.max_retries, delay)
            await asyncio.sleep(delay)


async def _body(resp: aiohttp.ClientResponse, path: str) -> Any:
    if resp.status >= 400:
        raise EngineRequestError(f"{path}: HTTP {resp.status}: {(await resp.text())[:500]}")
    if resp.content_type == "application/json":
        return await resp.json()
    return await resp.text()
