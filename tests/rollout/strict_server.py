"""Helpers for tests of the embedded server's strict SGLang mode: start one, load it, talk to it (loopback)."""
from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from rollout.config import RolloutConfig
from rollout.launch_args import SERVER_ENV, server_command
from rollout.process import free_port, start_process, wait_healthy


def start_strict_server(model_dir: Path, log_dir: Path, env: dict | None = None, max_batch: int = 2,
                        strict: bool = True):
    """(url, process, log_path) of an embedded server; env defaults to what engine processes get."""
    port = free_port()
    cfg = RolloutConfig(engine="embedded", dtype="float32", embedded_max_batch=max_batch, embedded_strict=strict)
    log_path = log_dir / f"engine_{port}.log"
    process = start_process(server_command(cfg, str(model_dir), "127.0.0.1", port), log_path,
                            env=SERVER_ENV if env is None else env)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, process, timeout_s=120, log_path=log_path)
    return url, process, log_path


def call(url: str, path: str, payload: dict | None = None, method: str = "POST", timeout: float = 60):
    """(status, body as JSON when it is JSON, else text)."""
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(f"{url}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            status, body = resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read().decode()
    try:
        return status, json.loads(body)
    except json.JSONDecodeError:
        return status, body


def server_info(url: str) -> dict:
    return call(url, "/get_server_info", method="GET")[1]


def long_request(tokens: int = 300) -> dict:
    return {"input_ids": [5, 6, 7], "sampling_params": {"max_new_tokens": tokens, "temperature": 1.0,
                                                        "ignore_eos": True}}


class Load:
    """Requests sent from threads, each blocking on its /generate answer ((None, error) when the server died)."""

    def __init__(self, url: str, count: int, tokens: int = 300):
        self.answers: list = []
        self.threads = [threading.Thread(target=self._send, args=(url, tokens)) for _ in range(count)]
        for thread in self.threads:
            thread.start()
        deadline = time.monotonic() + 30
        while server_info(url)["running"] == 0:
            assert time.monotonic() < deadline, "the load never started running"
            time.sleep(0.02)

    def _send(self, url: str, tokens: int) -> None:
        try:
            self.answers.append(call(url, "/generate", long_request(tokens)))
        except OSError as e:
            self.answers.append((None, str(e)))

    def join(self, timeout: float = 60) -> list:
        for thread in self.threads:
            thread.join(timeout)
        return self.answers


def exit_code(process, timeout: float = 10) -> int:
    return process.wait(timeout=timeout)


def strict_log_lines(log_path: Path) -> list[str]:
    return [line for line in log_path.read_text(errors="replace").splitlines() if "strict SGLang contract" in line]


def default_env_without_health_switch() -> dict:
    """The environment of a server started without SERVER_ENV: SGLang's health generation stays on."""
    return {k: v for k, v in os.environ.items() if k != "SGLANG_ENABLE_HEALTH_ENDPOINT_GENERATION"}
