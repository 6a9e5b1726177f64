"""One inference engine server (SGLang, or the embedded engine on CPU) owned by a Ray actor.

The actor launches the server process on its node's address, waits for /health, and watches it: a crashed
server is restarted on the same port (so the router's URL stays valid) with the newest checkpoint it knows of,
up to `max_engine_restarts` times. Weights pushed from memory (tensor, distributed sync) leave no checkpoint:
such a restart comes back older, so the engine leaves the router first and rejoins only once the trainer has
pushed it the newest weights (`rejoin_router`). Requests in flight on the dead server are resubmitted by the
router and the client (see client.py), so none is lost. Around training (colocated mode) the actor releases and resumes
GPU memory; around weight updates it pauses, flushes the cache and continues.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from rollout import gpu_ledger
from rollout.config import RolloutConfig
from rollout.launch_args import SERVER_ENV, server_command
from rollout.process import start_on_free_port, start_process, stop_process, wait_healthy
from rollout.router import add_worker, remove_worker
from rollout.sglang_contract import KV_CACHE, STRICT_VIOLATION_EXIT_CODE, WEIGHTS
from rollout.waits import DeadlineExceeded

log = logging.getLogger("rollout.engine")
FLUSH_TIMEOUT_S = 120.0  # how long an engine may take to become idle before a release or a cache flush


LONGER_CONTEXT_ENV = "SGLANG_ALLOW_OVERWRITE_LONGER_CONTEXT_LEN"


class EngineControlError(RuntimeError):
    """An engine refused a control request (release, resume, flush, pause); the message has its answer."""

    def __init__(self, message: str, status: int, answer: str):
        super().__init__(message)
        self.status, self.answer = status, answer


def server_env(cfg: RolloutConfig) -> dict[str, str]:
    """Environment for the server process. SGLang derives the longest context from the model config
    (sglang/srt/utils/hf_transformers/common.py get_context_length: max_position_embeddings, times the
    rope_scaling factor only when the scaling names no original_max_position_embeddings) and refuses a longer
    --context-length unless SGLANG_ALLOW_OVERWRITE_LONGER_CONTEXT_LEN=1 (configs/model_config.py
    _derive_context_length). Qwen3 with YaRN factor 2 over 32768 derives 40960 and refuses 65536, the window
    the scaling (the trainer's too) is made for. So: allowed up to original_max_position_embeddings x factor,
    refused beyond it, where the positions would be extrapolated past what the scaling covers."""
    scaling = cfg.rope_scaling or {}
    if cfg.context_length is None or "original_max_position_embeddings" not in scaling:
        return {}
    window = int(scaling["original_max_position_embeddings"] * scaling.get("factor", 1.0))
    if cfg.context_length > window:
        raise ValueError(
            f"rollout.context_length {cfg.context_length} is longer than the window rollout.rope_scaling is made "
            f"for ({scaling['original_max_position_embeddings']} x factor {scaling.get('factor', 1.0)} = {window}); "
            "raise the factor (in model.rope_scaling too: trainer and engines must scale alike) or shorten the "
            "context")
    return {LONGER_CONTEXT_ENV: "1"}


def _node_address() -> str:
    import ray

    return ray.util.get_node_ip_address()


def _holds_ray_gpu_share() -> bool:
    import ray

    return ray.is_initialized() and bool(ray.get_gpu_ids())


def _ray_gpu_ids() -> list:
    import ray

    ids = ray.get_gpu_ids()
    if not ids:
        raise RuntimeError("engine actor asked for a GPU but Ray assigned none; give the actor num_gpus > 0")
    return ids


class EngineActor:
    def __init__(self, cfg: RolloutConfig, model_path: str, engine_index: int, log_dir: str,
                 host: str | None = None, seed: int = 0, use_gpu: bool = False, base_gpu_id: int | None = None):
        self.cfg = cfg
        self.model_path = model_path
        self.weight_version = "0"  # the version `model_path` holds: what a (re)start loads
        self.newest_version = "0"  # the newest version pushed into the engines, by any transport
        self.engine_index = engine_index
        # The router, the trainer's sending rank and clients on other nodes reach the server at its node's
        # address; 127.0.0.1 would only answer on this node.
        self.host = host or _node_address()
        self.log_dir = Path(log_dir)
        self.port = 0  # chosen by start(): a port found free on self.host, kept across restarts
        self.seed = seed
        self.use_gpu = use_gpu
        # The placement's GPU id for the engine's first bundle, else the GPU Ray gave this actor's bundle; with
        # CUDA_VISIBLE_DEVICES left whole, it is the server's first.
        self.base_gpu_id = base_gpu_id if base_gpu_id is not None else (int(_ray_gpu_ids()[0]) if use_gpu else 0)
        self.log_path = self.log_dir / f"engine_{engine_index}.log"  # engine_{index}_{port}.log once started
        self.restarts = 0
        self.restarted_at: float | None = None  # time.time() of the last restart
        self.restart_weight_version: str | None = None  # the version the last restart loaded
        self.failed: str | None = None
        self.router_url: str | None = None
        self.routed = True  # listed by the router; False while a restart left it with old weights
        self._process = None
        self._stopping = False
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> str:
        start_on_free_port(self.host, self._launch_on)
        threading.Thread(target=self._watch, name=f"engine-{self.engine_index}-watch", daemon=True).start()
        return self.url

    def use_router(self, router_url: str) -> None:
        """The router in front of this engine: a restart that cannot load the newest weights leaves it."""
        self.router_url = router_url

    def _launch_on(self, port: int) -> None:
        self.port = port
        self.log_path = self.log_dir / f"engine_{self.engine_index}_{port}.log"
        try:
            self._launch()
        except BaseException:
            if self._process is not None:
                stop_process(self._process)
            raise

    def _launch(self) -> None:
        command = server_command(self.cfg, self.model_path, self.host, self.port, seed=self.seed + self.restarts,
                                 base_gpu_id=self.base_gpu_id, weight_version=self.weight_version,
                                 use_gpu=self.use_gpu, routed_experts=self.cfg.return_routed_experts)
        self._process = start_process(command, self.log_path, env={**SERVER_ENV, **server_env(self.cfg)})
        wait_healthy(self.url, self._process, self.cfg.engine_startup_timeout_s, self.log_path)
        self._book("serving")  # SGLang takes mem_fraction_static of its GPUs at start

    def _watch(self) -> None:
        while True:
            code = self._process.wait()
            with self._lock:
                if self._stopping:
                    return
                if code == STRICT_VIOLATION_EXIT_CODE:  # a strict engine (rehearsal) stopped where SGLang would die
                    self.failed = f"engine {self.engine_index} ({self.url}) died: {self._contract_violation()}"
                    log.error(self.failed)
                    return
                if self.restarts >= self.cfg.max_engine_restarts:
                    self.failed = f"engine {self.engine_index} exited with code {code} after {self.restarts} restarts"
                    log.error(self.failed)
                    return
                self.restarts += 1
                log.warning("engine %d exited with code %s; restart %d with weight version %s (newest %s)",
                            self.engine_index, code, self.restarts, self.weight_version, self.newest_version)
                if int(self.weight_version) < int(self.newest_version):
                    self._leave_router()
                try:
                    self._launch()
                except (RuntimeError, TimeoutError) as e:
                    self.failed = f"engine {self.engine_index} could not restart: {e}"
                    log.error(self.failed)
                    return
                self.restarted_at, self.restart_weight_version = time.time(), self.weight_version

    def _contract_violation(self) -> str:
        lines = self.log_path.read_text(errors="replace").splitlines() if self.log_path.exists() else []
        found = [line for line in lines if "strict SGLang contract" in line]
        return found[-1].split("rollout.embedded_server ", 1)[-1] if found else f"see {self.log_path}"

    def _leave_router(self) -> None:
        """Out of the router before the restarted server answers /health, so it serves no request with the
        old weights; `rejoin_router` brings it back once the newest weights are in."""
        if self.router_url is None or not self.routed:
            return
        try:
            remove_worker(self.router_url, self.url)
        except OSError as e:
            log.error("engine %d (%s) restarts with weight version %s, older than %s, and could not leave router "
                      "%s: %s; the manager will refuse its stale samples", self.engine_index, self.url,
                      self.weight_version, self.newest_version, self.router_url, e)
            return
        self.routed = False

    def rejoin_router(self) -> None:
        """Back into the router; refused while the server holds weights older than the newest pushed."""
        serving = self.serving_version()
        if serving is None or serving < int(self.newest_version):
            raise RuntimeError(
                f"engine {self.engine_index} ({self.url}) serves weight version {serving} (None: not answering) but "
                f"the newest is {self.newest_version}: push the newest weights into it (re-forming the weight "
                "update group under distributed sync) and tell the fleet with note_weights before readmitting it")
        if self.router_url is not None and not self.routed:
            add_worker(self.router_url, self.url, self.cfg.engine_startup_timeout_s)
        self.routed = True

    def serving_version(self) -> int | None:
        """The weight version the running server reports (SGLang's /model_info), None while it does not answer."""
        try:
            with urllib.request.urlopen(f"{self.url}/model_info", timeout=10) as resp:
                return int(json.loads(resp.read())["weight_version"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def info(self) -> dict:
        return {"url": self.url, "host": self.host, "base_gpu_id": self.base_gpu_id,
                "pid": self._process.pid if self._process else None, "restarts": self.restarts,
                "restarted_at": self.restarted_at, "restart_weight_version": self.restart_weight_version,
                "failed": self.failed, "weight_version": self.weight_version, "newest_version": self.newest_version,
                "routed": self.routed, "model_path": self.model_path}

    def note_weights(self, model_path: str | None, weight_version: str) -> None:
        """The engines now serve `weight_version`. `model_path`: a checkpoint of it, which a restart loads
        from now on; None when the weights were pushed from memory (tensor or distributed sync), so a restart
        comes back older and stays out of the router until `rejoin_router`."""
        self.newest_version = str(weight_version)
        if model_path is not None:
            self.model_path, self.weight_version = model_path, str(weight_version)

    # ---- control around training and weight updates (SGLang's HTTP API) --------------------------
    def release_memory(self, tags: list[str] | None = None) -> dict:
        """Release GPU memory (SGLang's tags: "weights", "kv_cache", "cuda_graph"; None = all). SGLang's
        scheduler asserts it is idle and the failed assert kills the server, so everything outstanding is
        aborted and /flush_cache retried until it succeeds (it succeeds only when idle) first."""
        self._post("/abort_request", {"abort_all": True})
        self._flush_until_idle("before releasing memory")
        answer = self._post("/release_memory_occupation", {"tags": tags})
        self._book("released" if not tags or WEIGHTS in tags else "weights")
        return answer

    def resume_memory(self, tags: list[str] | None = None) -> dict:
        """Resume released memory: tags ["weights"] before a weight update, then the rest (["kv_cache",
        "cuda_graph"]) before serving; None resumes all, which SGLang allows only when all are released."""
        if not tags or KV_CACHE in tags:
            self._book("serving")  # before the memory is taken: the ledger fails when a GPU would overflow
        elif WEIGHTS in tags:
            self._book("weights")
        return self._post("/resume_memory_occupation", {"tags": tags})

    def pause(self) -> dict:
        return self._post("/pause_generation", {"mode": "abort"})

    def flush_cache(self) -> str:
        return self._flush_until_idle("to flush the KV cache")

    def resume_generation(self) -> dict:
        return self._post("/continue_generation", {})

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            if self._process is not None:
                stop_process(self._process)

    def _flush_until_idle(self, purpose: str, timeout_s: float = FLUSH_TIMEOUT_S) -> str:
        """SGLang answers /flush_cache 400 while any request is queued or running (an aborted one still
        runs a step); retry, aborting late arrivals, until it flushes or the deadline passes."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return self._post("/flush_cache", {})
            except EngineControlError as e:
                if e.status != 400:
                    raise
                answer = e.answer
            if time.monotonic() > deadline:
                raise DeadlineExceeded(
                    f"engine {self.engine_index} ({self.url}) did not become idle {purpose}: /flush_cache still "
                    f"answers 400 {answer!r} after {timeout_s:.0f} s and /abort_request abort_all; something keeps "
                    f"sending it requests ({self._load_summary()}); stop the rollout client (and health-check "
                    "generations: SGLANG_ENABLE_HEALTH_ENDPOINT_GENERATION=0) before releasing or updating")
            self._post("/abort_request", {"abort_all": True})
            time.sleep(0.2)

    def _load_summary(self) -> str:
        """Queued and running requests as the server reports them (the embedded engine does; SGLang's
        /get_server_info reports its internal states instead)."""
        try:
            with urllib.request.urlopen(f"{self.url}/get_server_info", timeout=10) as resp:
                info = json.loads(resp.read())
        except (OSError, ValueError):
            return "the server does not answer /get_server_info"
        return f"queued {info.get('queued', '?')}, running {info.get('running', '?')}"

    def _book(self, phase: str) -> None:
        """The simulated GPU memory ledger of a rehearsal (a no-op otherwise): this engine's share of its
        GPUs in `phase` ("serving", "weights", "released"). A rehearsal's engines run on CPU but hold Ray GPU
        shares on their bundles, so those count as GPUs too."""
        on_gpus = self.use_gpu or _holds_ray_gpu_share()
        gpus = gpu_ledger.my_gpus(count=self.cfg.tp_size, base=self.base_gpu_id) if on_gpus else []
        gpu_ledger.book(f"engine {self.engine_index}", "engine", phase, gpus)

    def _post(self, path: str, payload: dict):
        request = urllib.request.Request(f"{self.url}{path}", data=json.dumps(payload).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=600) as resp:
                body = resp.read().decode()
        except urllib.error.HTTPError as e:  # the server's own words, e.g. what a strict engine refused
            answer = e.read().decode(errors="replace").strip()
            raise EngineControlError(f"engine {self.engine_index} ({self.url}) answered {path} with HTTP {e.code}: "
                                     f"{answer[:2000]}", e.code, answer) from None
        try:
            return json.loads(body)
        except json.JSONDecodeError:
            return body
