"""The router in front of the engines: sglang-router where it is installed, else our own balancer.

Either way the client gets one URL. Chosen by RolloutConfig.router: "auto" (sglang-router when importable),
"sglang_router" or "least_outstanding".
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from rollout.process import free_port, python_module, start_process, stop_process, wait_healthy


def sglang_router_command(worker_urls: list[str], host: str, port: int) -> list[str]:
    # Retries resubmit a request whose worker died; the health check takes a dead worker out of rotation.
    return python_module(
        "sglang_router.launch_router", "--worker-urls", *worker_urls, "--host", host, "--port", str(port),
        "--policy", "round_robin", "--retry-max-retries", "10", "--health-check-interval-secs", "1",
        "--health-failure-threshold", "1", "--log-level", "warn",
        # Its metrics exporter binds a fixed default port; two routers on one host would collide there.
        "--prometheus-host", host, "--prometheus-port", str(free_port(host)),
    )


def balancer_command(worker_urls: list[str], host: str, port: int) -> list[str]:
    return python_module("rollout.balancer", "--worker-urls", *worker_urls, "--host", host, "--port", str(port))


ROUTERS = {"sglang_router": sglang_router_command, "least_outstanding": balancer_command}


def resolve_router_kind(kind: str) -> str:
    if kind == "auto":
        return "sglang_router" if importlib.util.find_spec("sglang_router") else "least_outstanding"
    if kind not in ROUTERS:
        raise ValueError(f"rollout.router must be 'auto' or one of {sorted(ROUTERS)}, got {kind!r}")
    if kind == "sglang_router" and importlib.util.find_spec("sglang_router") is None:
        raise ValueError("rollout.router is 'sglang_router' but the sglang-router package is not installed; "
                         "pip install sglang-router, or set rollout.router=least_outstanding")
    return kind


@dataclass
class Router:
    kind: str
    url: str
    process: subprocess.Popen

    @classmethod
    def start(cls, worker_urls: list[str], kind: str = "auto", log_dir: Path = Path("logs"),
              host: str = "127.0.0.1", timeout_s: float = 60.0) -> Router:
        kind = resolve_router_kind(kind)
        port = free_port(host)
        log_path = Path(log_dir) / f"router_{kind}_{port}.log"
        process = start_process(ROUTERS[kind](worker_urls, host, port), log_path)
        url = f"http://{host}:{port}"
        try:
            wait_healthy(url, process, timeout_s, log_path)
            wait_workers_registered(url, worker_urls, timeout_s)
        except Exception:
            stop_process(process)
            raise
        return cls(kind, url, process)

    def stop(self) -> None:
        stop_process(self.process)


def wait_workers_registered(router_url: str, worker_urls: list[str], timeout_s: float) -> None:
    """sglang-router answers /health before it has registered its workers; until then every request would
    go to the first. Both routers list workers at /workers as {"workers": [{"url", "is_healthy"}, ...]}."""
    wanted = {u.rstrip("/") for u in worker_urls}
    deadline = time.monotonic() + timeout_s
    ready: set[str] = set()
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{router_url}/workers", timeout=5) as resp:
            workers = json.loads(resp.read())["workers"]
        ready = {w["url"].rstrip("/") for w in workers if w.get("is_healthy", True)}
        if wanted <= ready:
            return
        time.sleep(0.2)
    raise TimeoutError(f"router {router_url} registered {sorted(ready)} of workers {sorted(wanted)} "
                       f"within {timeout_s:.0f} s")
