"""Command lines for an engine server, per engine kind: SGLang's launch_server or our embedded server."""
from __future__ import annotations

import json

from rollout.config import RolloutConfig
from rollout.process import python_module
from rollout.sglang_contract import HEALTH_GENERATION_ENV


def sglang_server_args(cfg: RolloutConfig, model_path: str, host: str, port: int, seed: int = 0,
                       base_gpu_id: int = 0, weight_version: str = "0", use_gpu: bool = True,
                       routed_experts: bool = False) -> list[str]:
    """Arguments of `python -m sglang.launch_server` (sglang.srt.server_args.ServerArgs); SGLang always
    runs on GPUs, from base_gpu_id on. `routed_experts`: capture every token's experts for routing replay."""
    args = ["--model-path", model_path, "--host", host, "--port", str(port), "--tp-size", str(cfg.tp_size),
            "--mem-fraction-static", str(cfg.mem_fraction_static), "--dtype", cfg.dtype,
            "--random-seed", str(seed), "--base-gpu-id", str(base_gpu_id), "--weight-version", weight_version,
            "--trust-remote-code"]
    if cfg.context_length is not None:
        args += ["--context-length", str(cfg.context_length)]
    if cfg.rope_scaling is not None:
        # YaRN for 32k-64k outputs: the override is applied to the HF config before the model is built.
        args += ["--json-model-override-args", json.dumps({"rope_scaling": cfg.rope_scaling})]
    if cfg.placement == "colocated":
        # Lets /release_memory_occupation hand KV cache and weights back while the trainer runs.
        args += ["--enable-memory-saver"]
    if routed_experts:
        args += ["--enable-return-routed-experts"]
    return args


def embedded_server_args(cfg: RolloutConfig, model_path: str, host: str, port: int, seed: int = 0,
                         base_gpu_id: int = 0, weight_version: str = "0", use_gpu: bool = False,
                         routed_experts: bool = False) -> list[str]:
    """The embedded engine records routes whenever a request asks (`routed_experts` needs no flag)."""
    dtype = "float32" if cfg.dtype == "auto" else cfg.dtype
    device = f"cuda:{base_gpu_id}" if use_gpu else "cpu"
    return ["--model-path", model_path, "--host", host, "--port", str(port), "--dtype", dtype, "--device", device,
            "--max-batch", str(cfg.embedded_max_batch), "--threads", str(cfg.embedded_threads),
            "--seconds-per-token", str(cfg.embedded_seconds_per_token), "--random-seed", str(seed),
            "--weight-version", weight_version] + (["--strict-sglang"] if cfg.embedded_strict else [])


SERVER_MODULES = {"sglang": ("sglang.launch_server", sglang_server_args),
                  "embedded": ("rollout.embedded_server", embedded_server_args)}


def server_command(cfg: RolloutConfig, model_path: str, host: str, port: int, **kwargs) -> list[str]:
    module, build_args = SERVER_MODULES[cfg.engine]
    return python_module(module, *build_args(cfg, model_path, host, port, **kwargs))


# The environment of an engine server process (either kind). SGLang's /health otherwise runs a real one-token
# generation whenever the scheduler is idle (http_server.health_generate); the router polls /health every
# second, so such a generation can land between a successful /flush_cache and /release_memory_occupation
# (whose idle assert then kills the server), or run on released memory.
SERVER_ENV = {HEALTH_GENERATION_ENV: "0"}
