"""The router in front of the engines: sglang-router where it is installed, else our own balancer.

Either way the client gets one URL. Chosen by RolloutConfig.router: "auto" (sglang-router when importable),
"sglang_router" or "least_outstanding". Both speak sglang-router's worker API (0.3): GET /workers lists
{"workers": [{"id", "url", "is_healthy"}, ...]}, POST /workers {"url"} adds a worker and DELETE /workers/{id}
removes one (both answered 202 and applied in the background). Neither forwards /abort_request: the client
sends aborts to every engine itself.
"""
from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from rollout.process import (free_port, python_module, start_on_free_port, start_process, stop_process,
                             wait_healthy)


def sglang_router_command(worker_urls: list[str], host: str, port: int, request_timeout_s: float) -> list[str]:
    # Retries resubmit a request whose worker died; the health check takes a dead worker out of rotation.
    # The router's own request timeout (1800 s by default) must not cut off a request the client still waits
    # for: it gets the client's.
    return python_module(
        "sglang_router.launch_router", "--worker-urls", *worker_urls, "--host", host, "--port", str(port),
        "--policy", "round_robin", "--retry-max-retries", "10", "--health-check-interval-secs", "1",
        "--health-failure-threshold", "1", "--log-level", "warn",
        "--request-timeout-secs", str(math.ceil(request_timeout_s)),
        # Its metrics exporter binds a fixed default port; two routers on one host would collide there.
        "--prometheus-host", host, "--prometheus-port", str(free_port(host)),
    )


def balancer_command(worker_urls: list[str], host: str, port: int, request_timeout_s: float) -> list[str]:
    return python_module("rollout.balancer", "--worker-urls", *worker_urls, "--host", host, "--port", str(port),
                         "--request-timeout-s", str(request_timeout_s))


ROUTERS = {"sglang_router": sglang_router_command, "least_outstanding": balancer_command}


def resolve_router_kind(kind: str, routed_experts: bool = False) -> str:
    """`routed_experts`: requests ask for routes (routing replay). sglang-router 0.3.2 parses /generate into
    its own request type, which has no return_routed_experts, and forwards the request without it."""
    if kind == "auto":
        usable = importlib.util.find_spec("sglang_router") and not routed_experts
        return "sglang_router" if usable else "least_outstanding"
    if kind not in ROUTERS:
        raise ValueError(f"rollout.router must be 'auto' or one of {sorted(ROUTERS)}, got {kind!r}")
    if kind == "sglang_router" and routed_experts:
        raise ValueError("rollout.router is 'sglang_router', which drops return_routed_experts from the requests "
                         "it forwards (sglang-router 0.3.2); routing replay (algo.routing_replay) needs "
                         "rollout.router: least_outstanding (or auto)")
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
              host: str | None = None, timeout_s: float = 60.0, request_timeout_s: float = 3600.0,
              routed_experts: bool = False) -> Router:
        """`host`: the address to bind; by default this node's Ray address (engines and clients on other nodes
        reach it there), or 127.0.0.1 outside Ray. `request_timeout_s`: the client's per-request timeout.
        `routed_experts`: the requests ask for routed experts (resolve_router_kind)."""
        kind = resolve_router_kind(kind, routed_experts)
        host = host or driver_address()

        def start_on(port: int) -> Router:
            log_path = Path(log_dir) / f"router_{kind}_{port}.log"
            process = start_process(ROUTERS[kind](worker_urls, host, port, request_timeout_s), log_path)
            url = f"http://{host}:{port}"
            try:
                wait_healthy(url, process, timeout_s, log_path)
                wait_workers_registered(url, worker_urls, timeout_s)
            except BaseException:
                stop_process(process)
                raise
            return cls(kind, url, process)

        return start_on_free_port(host, start_on)

    def stop(self) -> None:
        stop_process(self.process)


def driver_address() -> str:
    import ray

    return ray.util.get_node_ip_address() if ray.is_initialized() else "127.0.0.1"


def router_workers(router_url: str) -> list[dict]:
    with urllib.request.urlopen(f"{router_url}/workers", timeout=5) as resp:
        return json.loads(resp.read())["workers"]


def add_worker(router_url: str, worker_url: str, timeout_s: float) -> None:
    """Route to `worker_url` again; returns once the router lists it healthy."""
    _request(router_url, "/workers", "POST", {"url": worker_url})
    wait_workers_registered(router_url, [worker_url], timeout_s)


def remove_worker(router_url: str, worker_url: str, timeout_s: float = 30.0) -> None:
    """Stop routing to `worker_url`; returns once the router no longer lists it."""
    wanted = worker_url.rstrip("/")
    deadline = time.monotonic() + timeout_s
    while listed := [w for w in router_workers(router_url) if w["url"].rstrip("/") == wanted]:
        if time.monotonic() > deadline:
            raise TimeoutError(f"router {router_url} still lists worker {worker_url} {timeout_s:.0f} s after "
                               "DELETE /workers/{id}")
        for worker in listed:
            _request(router_url, f"/workers/{worker['id']}", "DELETE")
        time.sleep(0.2)


def _request(router_url: str, path: str, method: str, payload: dict | None = None) -> None:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(f"{router_url}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10):
        pass


def wait_workers_registered(router_url: str, worker_urls: list[str], timeout_s: float) -> None:
    """sglang-router answers /health before it has registered its workers (and applies POST /workers in the
    background); until then every request would go to the ones it has."""
    wanted = {u.rstrip("/") for u in worker_urls}
    deadline = time.monotonic() + timeout_s
    ready: set[str] = set()
    while time.monotonic() < deadline:
        ready = {w["url"].rstrip("/") for w in router_workers(router_url) if w.get("is_healthy", True)}
        if wanted <= ready:
            return
        time.sleep(0.2)
    raise TimeoutError(f"router {router_url} registered {sorted(ready)} of workers {sorted(wanted)} "
                       f"within {timeout_s:.0f} s")
