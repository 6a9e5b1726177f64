"""The embedded engine for `mc-data`: started on loopback when a stage first asks for ctx.engine_url and
no engine.url is configured; it serves /generate (the reference policy) and /v1/chat/completions (the
difficulty predictor). Stopped when the run ends (and by rollout's orphan guard if mc-data is killed)."""
from __future__ import annotations

import subprocess
from pathlib import Path

from megatron_mc.data.pipeline.config import EngineConfig
from rollout.process import python_module, start_on_free_port, start_process, stop_process, wait_healthy

HOST = "127.0.0.1"


class EmbeddedEngine:
    def __init__(self, cfg: EngineConfig, log_path: Path) -> None:
        self.cfg = cfg
        self.log_path = Path(log_path)
        self.process: subprocess.Popen | None = None

    def start(self) -> str:
        model_path = self.cfg.model_path
        if model_path is None:
            from megatron_mc.data.tiny_default import prepare_tiny_default
            model_path = str(prepare_tiny_default().hf_dir)

        def start_on(port: int) -> str:
            url = f"http://{HOST}:{port}"
            command = python_module("rollout.embedded_server", "--model-path", model_path, "--host", HOST,
                                    "--port", str(port), "--threads", str(self.cfg.threads))
            self.process = start_process(command, self.log_path)
            try:
                wait_healthy(url, self.process, self.cfg.startup_timeout_s, self.log_path)
            except BaseException:
                self.stop()
                raise
            return url

        return start_on_free_port(HOST, start_on)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None
