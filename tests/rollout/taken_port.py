"""A port found free but taken by another program before the server binds it (the race
rollout/process.start_on_free_port retries)."""
from __future__ import annotations

import contextlib
import socket

from rollout import process


@contextlib.contextmanager
def first_port_found_free_is_taken(monkeypatch):
    """The next free_port() answers a port that a listening socket holds; later calls find real free ports.
    Yields that port."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    answers = iter([port])
    real = process.free_port
    monkeypatch.setattr(process, "free_port", lambda host="127.0.0.1": next(answers, None) or real(host))
    try:
        yield port
    finally:
        taken.close()
