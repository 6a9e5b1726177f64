"""An HTTP server speaking the subset of SGLang's API the project uses, over the embedded engine.

Run: python -m rollout.embedded_server --model-path DIR --port 30000 [--dtype float32] [--max-batch 32]

Request and response shapes follow SGLang (sglang.srt.managers.io_struct): /generate takes input_ids (or
text), sampling_params, return_logprob, rid (single or batched lists) and answers {"text", "output_ids",
"meta_info": {"id", "finish_reason", "prompt_tokens", "completion_tokens", "weight_version",
"output_token_logprobs": [[logprob, token_id, null], ...]}}. Requests queue while a batch runs; the next
batch takes up to --max-batch of them. Weight loads run on the same thread as batches, so a batch never
sees two weight versions.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from aiohttp import web

from rollout.embedded_engine import EmbeddedEngine, GenerationRequest, GenerationResult
from rollout.tensor_bytes import decode_named_tensors

log = logging.getLogger("rollout.embedded_server")


@dataclass
class _Pending:
    request: GenerationRequest
    future: asyncio.Future


class EmbeddedServer:
    def __init__(self, engine: EmbeddedEngine, tokenizer=None, max_batch: int = 32, weight_version: str = "0"):
        self.engine = engine
        self.tokenizer = tokenizer
        self.max_batch = max_batch
        self.weight_version = weight_version
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine")
        self._queue: list[_Pending] = []
        self._running: list[_Pending] = []
        self._wakeup = asyncio.Event()
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._weight_group = None
        self.served = 0

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1 << 30)
        r = app.router
        r.add_post("/generate", self.generate)
        for path in ("/health", "/health_generate", "/ready"):
            r.add_get(path, self.health)
        r.add_get("/get_model_info", self.model_info)
        r.add_get("/model_info", self.model_info)
        r.add_get("/get_server_info", self.server_info)
        r.add_get("/server_info", self.server_info)
        r.add_route("*", "/flush_cache", self.flush_cache)
        r.add_post("/abort_request", self.abort_request)
        r.add_post("/pause_generation", self.pause_generation)
        r.add_post("/continue_generation", self.continue_generation)
        r.add_post("/update_weights_from_disk", self.update_weights_from_disk)
        r.add_post("/update_weights_from_tensor", self.update_weights_from_tensor)
        r.add_post("/init_weights_update_group", self.init_weights_update_group)
        r.add_post("/update_weights_from_distributed", self.update_weights_from_distributed)
        r.add_post("/update_weight_version", self.update_weight_version)
        r.add_route("*", "/release_memory_occupation", self.memory_occupation)
        r.add_route("*", "/resume_memory_occupation", self.memory_occupation)
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
            pending = [self._submit(ids, p, rid) for ids, p, rid in zip(prompts, params, rids)]
        except (ValueError, TypeError) as e:
            return _error(400, str(e))
        return_logprob = body.get("return_logprob")
        results = await asyncio.gather(*(p.future for p in pending))
        outputs = [self._output(p.request, res, _at(return_logprob, i)) for i, (p, res) in
                   enumerate(zip(pending, results))]
        return web.json_response(outputs[0] if single else outputs)

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

    def _submit(self, input_ids: list[int], params: dict, rid: str | None) -> _Pending:
        if not input_ids:
            raise ValueError("/generate: empty input_ids")
        known = {"max_new_tokens", "temperature", "top_p", "top_k", "stop_token_ids", "ignore_eos",
                 "sampling_seed", "skip_special_tokens", "no_stop_trim", "spaces_between_special_tokens", "n"}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"/generate: the embedded engine does not support sampling_params {unknown}")
        if params.get("n", 1) != 1:
            raise ValueError("/generate: send one request per sample (n must be 1)")
        req = GenerationRequest(
            rid=rid or uuid.uuid4().hex,
            input_ids=list(input_ids),
            max_new_tokens=int(_given(params, "max_new_tokens", 128)),
            temperature=float(_given(params, "temperature", 1.0)),
            top_p=float(_given(params, "top_p", 1.0)),
            top_k=int(_given(params, "top_k", -1)),
            stop_token_ids=frozenset(params.get("stop_token_ids") or ()),
            ignore_eos=bool(params.get("ignore_eos", False)),
            seed=params.get("sampling_seed"),
        )
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
        text = self.tokenizer.decode(result.output_ids, skip_special_tokens=True) if self.tokenizer else ""
        return {"text": text, "output_ids": result.output_ids, "meta_info": meta}

    # ---- control ----------------------------------------------------------------------------------
    async def health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def model_info(self, request: web.Request) -> web.Response:
        return web.json_response({"model_path": self.engine.model_path, "tokenizer_path": self.engine.model_path,
                                  "is_generation": True, "weight_version": self.weight_version})

    async def server_info(self, request: web.Request) -> web.Response:
        return web.json_response({"model_path": self.engine.model_path, "max_batch": self.max_batch,
                                  "weight_version": self.weight_version, "engine": "embedded",
                                  "running": len(self._running), "queued": len(self._queue), "served": self.served})

    async def flush_cache(self, request: web.Request) -> web.Response:
        return web.Response(text="Cache flushed.")  # no cache survives a batch

    async def abort_request(self, request: web.Request) -> web.Response:
        body = await request.json()
        abort_all = body.get("abort_all", False)
        for p in self._queue + self._running:
            if abort_all or p.request.rid == body.get("rid"):
                p.request.aborted.set()
        aborted = [p for p in self._queue if p.request.aborted.is_set()]
        self._queue = [p for p in self._queue if not p.request.aborted.is_set()]
        for p in aborted:
            p.future.set_result(GenerationResult([], [], {"type": "abort", "message": "aborted before it ran"}))
        return web.Response(text="")

    async def pause_generation(self, request: web.Request) -> web.Response:
        body = await _json_or_empty(request)
        self._resumed.clear()
        if body.get("mode", "abort") == "abort":
            for p in self._running:
                p.request.aborted.set()
        return web.json_response({"success": True, "message": "paused"})

    async def continue_generation(self, request: web.Request) -> web.Response:
        self._resumed.set()
        self._wakeup.set()
        return web.json_response({"success": True, "message": "continued"})

    async def update_weights_from_disk(self, request: web.Request) -> web.Response:
        body = await request.json()
        return await self._load(body, self.engine.load_from_disk, body["model_path"])

    async def update_weights_from_tensor(self, request: web.Request) -> web.Response:
        body = await request.json()
        named = [t for text in body["serialized_named_tensors"] for t in decode_named_tensors(text)]
        return await self._load(body, self.engine.load_named_tensors, named)

    async def init_weights_update_group(self, request: web.Request) -> web.Response:
        from rollout.weight_sync.process_group import StandaloneGroup

        body = await request.json()
        loop = asyncio.get_running_loop()
        self._weight_group = await loop.run_in_executor(None, lambda: StandaloneGroup(
            body.get("backend", "gloo"), body["master_address"], int(body["master_port"]),
            rank=int(body["rank_offset"]), world_size=int(body["world_size"]), group_name=body.get("group_name")))
        return web.json_response({"success": True, "message": "weight update group ready"})

    async def update_weights_from_distributed(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self._weight_group is None:
            return _error(400, "call /init_weights_update_group before /update_weights_from_distributed")
        group = self._weight_group

        def receive_and_load(_) -> int:
            return self.engine.load_named_tensors(group.receive(body["names"], body["dtypes"], body["shapes"]))

        return await self._load(body, receive_and_load, None)

    async def update_weight_version(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.weight_version = str(body["new_version"])
        return web.json_response({"success": True, "message": f"weight version {self.weight_version}"})

    async def memory_occupation(self, request: web.Request) -> web.Response:
        # Nothing to release on CPU; on GPU the embedded engine keeps its memory (tests only).
        return web.json_response({"success": True, "message": "the embedded engine keeps its memory"})

    async def _load(self, body: dict, load, argument) -> web.Response:
        loop = asyncio.get_running_loop()
        try:
            count = await loop.run_in_executor(self._executor, load, argument)
        except (KeyError, ValueError, FileNotFoundError) as e:
            return web.json_response({"success": False, "message": str(e)}, status=400)
        if body.get("weight_version") is not None:
            self.weight_version = str(body["weight_version"])
        return web.json_response({"success": True, "message": f"loaded {count} tensors",
                                  "num_paused_requests": 0})


def _given(params: dict, key: str, default):
    return default if params.get(key) is None else params[key]


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
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads; on a shared CPU, more threads than cores makes tiny models far slower")
    parser.add_argument("--random-seed", type=int, default=0)
    parser.add_argument("--weight-version", default="0")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    import torch
    from transformers import AutoTokenizer

    torch.set_num_threads(args.threads)
    engine = EmbeddedEngine(args.model_path, dtype=args.dtype, device=args.device, seed=args.random_seed)
    tokenizer = AutoTokenizer.from_pretrained(args.model_path)
    server = EmbeddedServer(engine, tokenizer, max_batch=args.max_batch, weight_version=args.weight_version)
    web.run_app(server.app(), host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
