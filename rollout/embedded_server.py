"""An HTTP server speaking the subset of SGLang's API the project uses, over the embedded engine.

Run: python -m rollout.embedded_server --model-path DIR --port 30000 [--dtype float32] [--max-batch 32]
     [--strict-sglang]

Request and response shapes follow SGLang (sglang.srt.managers.io_struct): /generate takes input_ids (or
text), sampling_params, return_logprob, rid (single or batched lists) and answers {"text", "output_ids",
"meta_info": {"id", "finish_reason", "prompt_tokens", "completion_tokens", "weight_version",
"output_token_logprobs": [[logprob, token_id, null], ...]}}, plus meta_info "routed_experts" (SGLang's base64
form, rollout/routed_experts.py) for a request with return_routed_experts. Requests queue while a batch runs; the next
batch takes up to --max-batch of them. Weight loads run on the same thread as batches, so a batch never
sees two weight versions. /v1/chat/completions answers OpenAI chat requests (non-streaming, n samples)
through the tokenizer's chat template, for clients that speak OpenAI's API (mc-data's difficulty predictor).

With --strict-sglang the server also keeps SGLang 0.5.x's contract (rollout/sglang_contract.py): a call
that would kill SGLang (a release while requests run, generation or a weight load into released memory,
resuming a tag that is not released) is answered 500 "strict SGLang contract: ..." and the server exits
with STRICT_VIOLATION_EXIT_CODE; /flush_cache fails (400) unless idle; /generate waits while generation
is paused and holds the model-update lock, which an unpaused weight update takes as writer; tensor and
distributed weight updates need a /begin_weight_update session; /health runs a one-token generation unless
SGLANG_ENABLE_HEALTH_ENDPOINT_GENERATION=0. Memory is tracked per tag (weights, kv_cache, cuda_graph) in
both modes; the tensors themselves stay where they are.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from rollout.embedded_engine import EmbeddedEngine, GenerationRequest, GenerationResult
from rollout.routed_experts import encode as encode_routes
from rollout.sglang_contract import (
    DEFAULT_GROUP_NAME,
    STRICT_VIOLATION_EXIT_CODE,
    WEIGHTS,
    ModelUpdateLock,
    contract_message,
    health_generation_enabled,
    tags_of,
)
from rollout.tensor_bytes import decode_named_tensors

log = logging.getLogger("rollout.embedded_server")
HEALTH_CHECK_TIMEOUT_S = 20.0  # sglang.srt.entrypoints.http_server: a health generation waits this long


@dataclass
class _Pending:
    request: GenerationRequest
    future: asyncio.Future


class EmbeddedServer:
    def __init__(self, engine: EmbeddedEngine, tokenizer=None, max_batch: int = 32, weight_version: str = "0",
                 strict: bool = False, health_generation: bool = False):
        self.engine = engine
        self.strict = strict
        self.health_generation = strict and health_generation
        self.tokenizer = tokenizer
        self.max_batch = max_batch
        self.weight_version = weight_version
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine")
        self._queue: list[_Pending] = []
        self._running: list[_Pending] = []
        self._wakeup = asyncio.Event()
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._weight_groups: dict[str, object] = {}  # group_name -> StandaloneGroup, as SGLang keys them
        self._update_lock = ModelUpdateLock()
        self._update_session = False
        self.released: set[str] = set()  # memory tags released by /release_memory_occupation
        self.violations: list[str] = []
        self.served = 0

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1 << 30)
        r = app.router
        r.add_post("/generate", self.generate)
        r.add_post("/v1/chat/completions", self.chat_completions)
        for path in ("/health", "/health_generate"):
            r.add_get(path, self.health)
        r.add_get("/ready", self.ready)
        r.add_get("/get_model_info", self.model_info)
        r.add_get("/model_info", self.model_info)
        r.add_get("/get_server_info", self.server_info)
        r.add_get("/server_info", self.server_info)
        _add_get_post(r, "/flush_cache", self.flush_cache)
        r.add_post("/abort_request", self.abort_request)
        r.add_post("/pause_generation", self.pause_generation)
        r.add_post("/continue_generation", self.continue_generation)
        r.add_post("/update_weights_from_disk", self.update_weights_from_disk)
        r.add_post("/update_weights_from_tensor", self.update_weights_from_tensor)
        r.add_post("/init_weights_update_group", self.init_weights_update_group)
        r.add_post("/destroy_weights_update_group", self.destroy_weights_update_group)
        r.add_post("/begin_weight_update", self.begin_weight_update)
        r.add_post("/end_weight_update", self.end_weight_update)
        r.add_post("/update_weights_from_distributed", self.update_weights_from_distributed)
        r.add_post("/update_weight_version", self.update_weight_version)
        _add_get_post(r, "/release_memory_occupation", self.release_memory_occupation)
        _add_get_post(r, "/resume_memory_occupation", self.resume_memory_occupation)
        app.on_startup.append(self._start_scheduler)
        return app

    # ---- scheduling -------------------------------------------------------------------------------
    async def _start_scheduler(self, app: web.Application) -> None:
        app["scheduler"] = asyncio.get_running_loop().create_task(self._schedule())

    async def _schedule(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            await self._resumed.wait()
            self._wakeup.clear()
            while self._queue and self._resumed.is_set():
                self._running, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch:]
                batch = [p.request for p in self._running]
                try:
                    results = await loop.run_in_executor(self._executor, self.engine.generate, batch)
                except Exception as e:  # a failed batch fails its requests, not the server
                    log.exception("batch failed")
                    for p in self._running:
                        if not p.future.done():
                            p.future.set_exception(e)
                else:
                    for p, result in zip(self._running, results):
                        if not p.future.done():
                            p.future.set_result(result)
                    self.served += len(results)
                self._running = []

    # ---- /generate --------------------------------------------------------------------------------
    async def generate(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("stream"):
            return _error(400, "the embedded engine does not stream; send stream=false")
        try:
            prompts, single = self._prompts(body)
            params = _per_prompt(body.get("sampling_params") or {}, len(prompts), "sampling_params")
            rids = _per_prompt(body.get("rid"), len(prompts), "rid")
            routes = _per_prompt(body.get("return_routed_experts"), len(prompts), "return_routed_experts")
            requests = [self._request(ids, p, rid, bool(r)) for ids, p, rid, r in zip(prompts, params, rids, routes)]
        except (ValueError, TypeError) as e:
            return _error(400, str(e))
        return_logprob = body.get("return_logprob")
        async with self._generation_slot():
            if (refused := self._refuse_generation("/generate")) is not None:
                return refused
            pending = [self._enqueue(req) for req in requests]
            results = await asyncio.gather(*(p.future for p in pending))
        outputs = [self._output(p.request, res, _at(return_logprob, i)) for i, (p, res) in
                   enumerate(zip(pending, results))]
        return web.json_response(outputs[0] if single else outputs)

    # ---- /v1/chat/completions ---------------------------------------------------------------------
    async def chat_completions(self, request: web.Request) -> web.Response:
        """OpenAI's chat completions, non-streaming: the messages through the tokenizer's chat template (a
        plain role: content join without one), n samples, temperature / top_p / max_tokens / seed."""
        body = await request.json()
        if body.get("stream"):
            return _error(400, "the embedded engine does not stream; send stream=false")
        if self.tokenizer is None:
            return _error(400, "/v1/chat/completions needs a tokenizer; start the server with one")
        try:
            prompt_ids = self._chat_prompt_ids(body.get("messages"))
            requests = _chat_requests(body, prompt_ids)
        except (ValueError, TypeError) as e:
            return _error(400, f"/v1/chat/completions: {e}")
        async with self._generation_slot():
            if (refused := self._refuse_generation("/v1/chat/completions")) is not None:
                return refused
            results = await asyncio.gather(*(self._enqueue(req).future for req in requests))
        choices = [{"index": i, "message": {"role": "assistant",
                                            "content": self.tokenizer.decode(r.output_ids, skip_special_tokens=True)},
                    "finish_reason": r.finish_reason.get("type", "stop")} for i, r in enumerate(results)]
        completion_tokens = sum(len(r.output_ids) for r in results)
        return web.json_response({
            "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model") or self.engine.model_path, "choices": choices,
            "usage": {"prompt_tokens": len(prompt_ids), "completion_tokens": completion_tokens,
                      "total_tokens": len(prompt_ids) + completion_tokens}})

    def _chat_prompt_ids(self, messages) -> list[int]:
        if not isinstance(messages, list) or not messages:
            raise ValueError("messages must be a non-empty list of {role, content}")
        plain = [{"content": _message_text(m, i), "role": m["role"]} for i, m in enumerate(messages)]
        if getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template(plain, tokenize=False, add_generation_prompt=True)
        else:
            text = "\n\n".join(f"{m['role']}: {m['content']}" for m in plain) + "\n\nassistant: "
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _prompts(self, body: dict) -> tuple[list[list[int]], bool]:
        if body.get("input_ids") is not None:
            ids = body["input_ids"]
            single = not ids or isinstance(ids[0], int)
            return ([ids] if single else ids), single
        if body.get("text") is not None and self.tokenizer is not None:
            text = body["text"]
            single = isinstance(text, str)
            texts = [text] if single else text
            return [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts], single
        raise ValueError("/generate needs input_ids (or text, when the server has a tokenizer)")

    def _request(self, input_ids: list[int], params: dict, rid: str | None,
                 return_routed_experts: bool = False) -> GenerationRequest:
        if not input_ids:
            raise ValueError("/generate: empty input_ids")
        known = {"max_new_tokens", "temperature", "top_p", "top_k", "stop_token_ids", "ignore_eos",
                 "sampling_seed", "skip_special_tokens", "no_stop_trim", "spaces_between_special_tokens", "n"}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"/generate: the embedded engine does not support sampling_params {unknown}")
        if params.get("n", 1) != 1:
            raise ValueError("/generate: send one request per sample (n must be 1)")
        return GenerationRequest(
            rid=rid or uuid.uuid4().hex,
            input_ids=list(input_ids),
            max_new_tokens=int(_given(params, "max_new_tokens", 128)),
            temperature=float(_given(params, "temperature", 1.0)),
            top_p=float(_given(params, "top_p", 1.0)),
            top_k=int(_given(params, "top_k", -1)),
            stop_token_ids=frozenset(params.get("stop_token_ids") or ()),
            ignore_eos=bool(params.get("ignore_eos", False)),
            seed=params.get("sampling_seed"),
            return_routed_experts=return_routed_experts,
        )

    def _enqueue(self, req: GenerationRequest) -> _Pending:
        pending = _Pending(req, asyncio.get_running_loop().create_future())
        self._queue.append(pending)
        self._wakeup.set()
        return pending

    def _output(self, req: GenerationRequest, result: GenerationResult, return_logprob: bool) -> dict:
        meta = {
            "id": req.rid,
            "finish_reason": result.finish_reason,
            "prompt_tokens": len(req.input_ids),
            "completion_tokens": len(result.output_ids),
            "cached_tokens": 0,
            "weight_version": self.weight_version,
        }
        if return_logprob:
            meta["output_token_logprobs"] = [[lp, tok, None] for lp, tok in zip(result.logprobs, result.output_ids)]
        if result.routed_experts is not None:
            meta["routed_experts"] = encode_routes(result.routed_experts.numpy())
        text = self.tokenizer.decode(result.output_ids, skip_special_tokens=True) if self.tokenizer else ""
        return {"text": text, "output_ids": result.output_ids, "meta_info": meta}

    # ---- health and info --------------------------------------------------------------------------
    async def health(self, request: web.Request) -> web.Response:
        generates = self.strict and (request.path == "/health_generate" or self.health_generation)
        return await self._health_generate() if generates else web.Response(text="ok")

    async def _health_generate(self) -> web.Response:
        """SGLang's /health_generate (and /health unless SGLANG_ENABLE_HEALTH_ENDPOINT_GENERATION=0): a
        one-token generation through the normal path, skipped by a busy scheduler."""
        try:
            async with asyncio.timeout(HEALTH_CHECK_TIMEOUT_S), self._generation_slot():
                if not self._idle():
                    return web.Response(text="ok")
                if (refused := self._refuse_generation("a health-check generation")) is not None:
                    return refused
                health_check = GenerationRequest(rid=f"HEALTH_CHECK_{uuid.uuid4().hex}", input_ids=[0],
                                                 max_new_tokens=1, temperature=0.0)
                await self._enqueue(health_check).future
        except TimeoutError:
            return web.Response(status=503, text="health check generation timed out")
        return web.Response(text="ok")

    async def ready(self, request: web.Request) -> web.Response:
        return web.Response(status=503 if self.strict and not self._resumed.is_set() else 200)

    async def model_info(self, request: web.Request) -> web.Response:
        return web.json_response({"model_path": self.engine.model_path, "tokenizer_path": self.engine.model_path,
                                  "is_generation": True, "weight_version": self.weight_version})

    async def server_info(self, request: web.Request) -> web.Response:
        return web.json_response({"model_path": self.engine.model_path, "max_batch": self.max_batch,
                                  "weight_version": self.weight_version, "engine": "embedded",
                                  "running": len(self._running), "queued": len(self._queue), "served": self.served,
                                  "strict": self.strict, "released": sorted(self.released),
                                  "paused": not self._resumed.is_set(), "strict_violations": self.violations})

    # ---- cache, aborts, pause ---------------------------------------------------------------------
    async def flush_cache(self, request: web.Request) -> web.Response:
        if self.strict and not self._idle():
            log.warning(contract_message(f"/flush_cache with {self._busy()}", "SGLang's scheduler flushes only "
                                         "when idle and answers 400 'Flush cache failed.'"))
            return web.Response(status=400, text="Flush cache failed.\n")  # http_server.flush_cache's answer
        return web.Response(text="Cache flushed.")  # no cache survives a batch

    async def abort_request(self, request: web.Request) -> web.Response:
        body = await request.json()
        self._abort(body.get("abort_all", False), body.get("rid"))
        return web.Response(text="")

    def _abort(self, abort_all: bool, rid: str | None = None) -> None:
        for p in self._queue + self._running:
            if abort_all or p.request.rid == rid:
                p.request.aborted.set()
        aborted = [p for p in self._queue if p.request.aborted.is_set()]
        self._queue = [p for p in self._queue if not p.request.aborted.is_set()]
        for p in aborted:
            p.future.set_result(GenerationResult([], [], {"type": "abort", "message": "aborted before it ran"}))

    async def pause_generation(self, request: web.Request) -> web.Response:
        body = await _json_or_empty(request)
        self._resumed.clear()
        if body.get("mode", "abort") != "abort":
            return web.json_response({"success": True, "message": "paused"})
        if not self.strict:  # as SGLang's abort mode: queued and running requests come back aborted
            self._abort(abort_all=True)
            while self._running:  # the running ones answer (with the version that ran them) first
                await asyncio.sleep(0.005)
            return web.json_response({"success": True, "message": "paused"})
        # TokenizerManager.pause_generation (mode abort): abort everything until no request holds the lock.
        while True:
            self._abort(abort_all=True)
            if not self._update_lock.is_locked():
                break
            await asyncio.sleep(0.05)
        return web.json_response({"message": "Generation paused successfully.", "status": "ok"})

    async def continue_generation(self, request: web.Request) -> web.Response:
        self._resumed.set()
        self._wakeup.set()
        return web.json_response({"success": True, "message": "continued"})

    # ---- memory -----------------------------------------------------------------------------------
    async def release_memory_occupation(self, request: web.Request) -> web.Response:
        try:
            tags = tags_of(await _json_or_empty(request))
        except ValueError as e:
            return _error(400, str(e))
        if self.strict and not self._idle():
            return self._violation(
                f"/release_memory_occupation with {self._busy()}",
                "SGLang's scheduler asserts it is idle (is_fully_idle) and the failed assert kills the server; "
                "abort what is outstanding and retry /flush_cache until it succeeds first", fatal=True)
        self.released.update(tags)
        return web.json_response({"success": True, "message": f"released {sorted(tags)}"})

    async def resume_memory_occupation(self, request: web.Request) -> web.Response:
        try:
            tags = tags_of(await _json_or_empty(request))
        except ValueError as e:
            return _error(400, str(e))
        if self.strict and (not_released := sorted(set(tags) - self.released)):
            return self._violation(
                f"/resume_memory_occupation of {not_released}, which are not released (released: "
                f"{sorted(self.released)})", "SGLang's scheduler removes each tag from its released set "
                "(offload_tags.remove) and the KeyError kills the server; resume exactly the tags still released",
                fatal=True)
        self.released.difference_update(tags)
        return web.json_response({"success": True, "message": f"resumed {sorted(tags)}"})

    # ---- weights ----------------------------------------------------------------------------------
    async def update_weights_from_disk(self, request: web.Request) -> web.Response:
        body = await request.json()
        return await self._load(body, self.engine.load_from_disk, body["model_path"], "/update_weights_from_disk")

    async def update_weights_from_tensor(self, request: web.Request) -> web.Response:
        body = await request.json()
        named = [t for text in body["serialized_named_tensors"] for t in decode_named_tensors(text)]
        return await self._load(body, self.engine.load_named_tensors, named, "/update_weights_from_tensor",
                                needs_session=True)

    async def init_weights_update_group(self, request: web.Request) -> web.Response:
        from rollout.weight_sync.process_group import StandaloneGroup

        body = await request.json()
        name = body.get("group_name") or DEFAULT_GROUP_NAME
        loop = asyncio.get_running_loop()
        try:
            group = await loop.run_in_executor(None, lambda: StandaloneGroup(
                body.get("backend", "gloo"), body["master_address"], int(body["master_port"]),
                rank=int(body["rank_offset"]), world_size=int(body["world_size"]), group_name=body.get("group_name")))
        except Exception as e:  # SGLang's model runner answers any failure to form the group with success=false
            return web.json_response({"success": False, "message": f"Failed to initialize custom process group "
                                      f"{name!r}: {e}."}, status=400)
        self._weight_groups[name] = group
        return web.json_response({"success": True, "message": f"weight update group {name!r} ready"})

    async def destroy_weights_update_group(self, request: web.Request) -> web.Response:
        body = await _json_or_empty(request)
        group = self._weight_groups.pop(body.get("group_name") or DEFAULT_GROUP_NAME, None)
        if group is None:
            return web.json_response({"success": False, "message": "The group to be destroyed does not exist."},
                                     status=400)
        group.destroy()
        return web.json_response({"success": True, "message": "Succeeded to destroy custom process group."})

    async def update_weights_from_distributed(self, request: web.Request) -> web.Response:
        body = await request.json()
        name = body.get("group_name") or DEFAULT_GROUP_NAME
        group = self._weight_groups.get(name)
        if group is None:
            return _error(400, f"weight update group {name!r} is not formed (formed: {sorted(self._weight_groups)}); "
                               "call /init_weights_update_group with this group_name first")

        def receive_and_load(_) -> int:
            return self.engine.load_named_tensors(group.receive(body["names"], body["dtypes"], body["shapes"]))

        return await self._load(body, receive_and_load, None, "/update_weights_from_distributed", needs_session=True)

    async def begin_weight_update(self, request: web.Request) -> web.Response:
        async with self._update_slot("/begin_weight_update"):
            if self._update_session:
                return _failure("a weight-update session is already open; call end_weight_update() first")
            self._update_session = True
        return web.json_response({"success": True, "message": "Success"})

    async def end_weight_update(self, request: web.Request) -> web.Response:
        async with self._update_slot("/end_weight_update"):
            if not self._update_session:
                return _failure("no weight-update session is open; call begin_weight_update() first")
            self._update_session = False
        return web.json_response({"success": True, "message": "Success"})

    async def update_weight_version(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.weight_version = str(body["new_version"])
        return web.json_response({"success": True, "message": f"weight version {self.weight_version}"})

    async def _load(self, body: dict, load, argument, what: str, needs_session: bool = False) -> web.Response:
        if body.get("abort_all_requests"):
            self._abort(abort_all=True)
        loop = asyncio.get_running_loop()
        async with self._update_slot(what):
            if (refused := self._refuse_update(what, needs_session)) is not None:
                return refused
            try:
                count = await loop.run_in_executor(self._executor, load, argument)
            except (KeyError, ValueError, FileNotFoundError) as e:
                return _failure(str(e))
        if body.get("weight_version") is not None:
            self.weight_version = str(body["weight_version"])
        return web.json_response({"success": True, "message": f"loaded {count} tensors",
                                  "num_paused_requests": 0})

    # ---- the strict contract ----------------------------------------------------------------------
    def _idle(self) -> bool:
        return not self._queue and not self._running

    def _busy(self) -> str:
        return f"{len(self._queue)} requests queued and {len(self._running)} running"

    @asynccontextmanager
    async def _generation_slot(self):
        """Strict: what SGLang's TokenizerManager.generate_request does before a request reaches the
        scheduler: wait while generation is paused, then hold the model-update lock as a reader."""
        if not self.strict:
            yield
            return
        await self._resumed.wait()
        async with self._update_lock.reader():
            yield

    @asynccontextmanager
    async def _update_slot(self, what: str):
        """Strict: a weight update while generation is not paused takes the model-update lock as writer,
        waiting for every running request (TokenizerManager.update_weights_from_*); paused, it runs at once."""
        if not self.strict or not self._resumed.is_set():
            yield
            return
        if self._update_lock.readers:
            log.warning("%s waits for %d running requests: generation is not paused, so SGLang's model-update "
                        "lock lets them finish first", what, self._update_lock.readers)
        async with self._update_lock.writer():
            yield

    def _refuse_generation(self, what: str) -> web.Response | None:
        if self.strict and self.released:
            return self._violation(
                f"{what} while {sorted(self.released)} released",
                "SGLang would run the model on GPU memory torch_memory_saver has unmapped (an illegal memory "
                "access kills the server); resume every released tag before generating", fatal=True)
        return None

    def _refuse_update(self, what: str, needs_session: bool) -> web.Response | None:
        if not self.strict:
            return None
        if WEIGHTS in self.released:
            return self._violation(
                f"{what} while the weights are released",
                "SGLang would copy into weight memory torch_memory_saver has unmapped (an illegal memory access "
                "kills the server); resume tags ['weights'] before updating them", fatal=True)
        if needs_session and not self._update_session:
            return self._violation(
                f"{what} outside a weight-update session",
                f"SGLang answers success=false ('{what.strip('/')} must run between begin_weight_update() and "
                "end_weight_update()') and loads nothing; POST /begin_weight_update before the first bucket and "
                "/end_weight_update after the last", status=400)
        return None

    def _violation(self, what: str, why: str, status: int = 500, fatal: bool = False) -> web.Response:
        message = contract_message(what, why)
        self.violations.append(message)
        if fatal:
            log.error("%s; the server exits with code %d, as SGLang would die", message, STRICT_VIOLATION_EXIT_CODE)
            asyncio.get_running_loop().call_later(0.2, _exit_after_violation)
        else:
            log.error(message)
        return web.json_response({"success": False, "message": message, "error": {"message": message}},
                                 status=status)


def _exit_after_violation() -> None:
    """Die the way SGLang does on a scheduler exception: at once, once the answer has gone out."""
    logging.shutdown()
    os._exit(STRICT_VIOLATION_EXIT_CODE)


def _add_get_post(router, path: str, handler) -> None:
    router.add_get(path, handler)
    router.add_post(path, handler)


def _failure(message: str) -> web.Response:
    return web.json_response({"success": False, "message": message}, status=400)


def _given(params: dict, key: str, default):
    return default if params.get(key) is None else params[key]


def _message_text(message, index: int) -> str:
    """A message's content as text: a string, or OpenAI's list of {"type": "text", "text"} parts."""
    if not isinstance(message, dict) or not isinstance(message.get("role"), str):
        raise ValueError(f"messages[{index}] must be an object with a string role")
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in content):
        return "".join(str(p.get("text", "")) for p in content)
    raise ValueError(f"messages[{index}].content must be a string or a list of text parts")


def _chat_requests(body: dict, prompt_ids: list[int]) -> list[GenerationRequest]:
    """One engine request per sample (n); a seed makes sample i use seed + i."""
    if body.get("stop"):
        raise ValueError("stop sequences are not supported by the embedded engine")
    n = int(_given(body, "n", 1))
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    seed = body.get("seed")
    max_tokens = int(_given(body, "max_completion_tokens", _given(body, "max_tokens", 128)))
    return [GenerationRequest(rid=uuid.uuid4().hex, input_ids=list(prompt_ids), max_new_tokens=max_tokens,
                              temperature=float(_given(body, "temperature", 1.0)),
                              top_p=float(_given(body, "top_p", 1.0)),
                              seed=None if seed is None else int(seed) + i) for i in range(n)]


def _per_prompt(value, count: int, name: str) -> list:
    if isinstance(value, list):
        if len(value) != count:
            raise ValueError(f"/generate: {name} has {len(value)} entries for {count} prompts")
        return value
    return [value] * count


def _at(value, index: int):
    return value[index] if isinstance(value, list) else value


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"message": message}}, status=status)


async def _json_or_empty(request: web.Request) -> dict:
    return await request.json() if request.can_read_body else {}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-path", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=30000)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--seconds-per-token", type=float, default=0.0,
                        help="a floor on each decoding step (rehearsals: responses that take a while, like real ones)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads; on a shared CPU, more threads than cores makes tiny models far slower")
    parser.add_argument("--random-seed", type=int, default=0)
    parser.add_argument("--weight-version", default="0")
    parser.add_argument("--strict-sglang", action="store_true",
                        help="keep SGLang 0.5.x's contract: refuse (and die on) what would make SGLang fail")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    import torch
    from transformers import AutoTokenizer

    torch.set_num_threads(args.threads)
    engine = EmbeddedEngine(args.model_path, dtype=args.dtype, device=args.device, seed=args.random_seed,
                            seconds_per_token=args.seconds_per_token)
    tokenizer = AutoTokenizer.from_pretrained(args.model_path)
    server = EmbeddedServer(engine, tokenizer, max_batch=args.max_batch, weight_version=args.weight_version,
                            strict=args.strict_sglang, health_generation=health_generation_enabled(os.environ))
    web.run_app(server.app(), host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
