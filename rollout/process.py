"""Child server processes (engines, routers): start, wait until healthy, stop; free loopback ports."""
from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, TypeVar

ORPHAN_GUARD = Path(__file__).with_name("orphan_guard.py")
PORT_ATTEMPTS = 3
PORT_TAKEN = "address already in use"  # what SGLang, sglang-router and aiohttp servers say when bind fails
T = TypeVar("T")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def start_on_free_port(host: str, start: Callable[[int], T]) -> T:
    """start(port) on a port of `host` found free, again on another port when the server could not bind it:
    a port found free can be taken (by any process's outgoing connection) before the server binds it, and
    the server then exits saying so (wait_healthy's error carries its log). `start` stops what it started
    before it raises."""
    for attempt in range(1, PORT_ATTEMPTS + 1):
        try:
            return start(free_port(host))
        except Exception as e:
            if attempt == PORT_ATTEMPTS or PORT_TAKEN not in str(e).lower():
                raise
    raise AssertionError("unreachable")


def wait_healthy(url: str, process: subprocess.Popen, timeout_s: float, log_path: Path | None = None) -> None:
    """Block until GET {url}/health answers 200; raise with the log's tail if the process exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server process for {url} exited with code {process.returncode} before it was "
                               f"healthy; {_tail(log_path)}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError, http.client.HTTPException):
            pass  # not up yet; or another program took the port first (the process then exits, said above)
        time.sleep(0.2)
    raise TimeoutError(f"server for {url} was not healthy after {timeout_s:.0f} s; {_tail(log_path)}")


def start_process(command: list[str], log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start a server in a session (and process group) of its own, appending its output to log_path.

    It runs under rollout/orphan_guard.py, which execs it in place (the pid, exit status and group are the
    server's) and stops the group if this process dies first, so a killed driver leaves no server behind.
    """
    env = {**os.environ, **(env or {})}
    if shutil.which(command[0], path=env.get("PATH")) is None:
        raise FileNotFoundError(f"cannot start a server: {command[0]!r} is not an executable file or on PATH")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    guarded = [sys.executable, "-I", str(ORPHAN_GUARD), str(os.getpid()), "--", *command]
    with open(log_path, "ab") as log:
        return subprocess.Popen(guarded, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def stop_process(process: subprocess.Popen, grace_s: float = 5.0) -> None:
    """SIGTERM the process group (the server and its children), SIGKILL after the grace period."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def _tail(log_path: Path | None, lines: int = 20) -> str:
    if log_path is None or not log_path.exists():
        return "no log"
    text = log_path.read_text(errors="replace").splitlines()[-lines:]
    return f"log {log_path} ends with:\n" + "\n".join(text)
