"""Run an entry script on N local ranks when it was not started by torchrun (or another launcher)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys


def ensure_ranks(world_size: int) -> None:
    """Return in a rank process. If RANK/WORLD_SIZE are unset, re-run this command line once per local
    rank (env:// rendezvous on loopback) and exit with the first non-zero status, or 0."""
    if "WORLD_SIZE" in os.environ:
        if int(os.environ["WORLD_SIZE"]) != world_size:
            raise SystemExit(
                f"WORLD_SIZE={os.environ['WORLD_SIZE']} but the requested layout needs {world_size} ranks"
            )
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = dict(os.environ, WORLD_SIZE=str(world_size), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    if world_size == 1:
        os.environ.update(base, RANK="0", LOCAL_RANK="0")
        return
    procs = [
        subprocess.Popen([sys.executable, *sys.argv], env=dict(base, RANK=str(r), LOCAL_RANK=str(r)))
        for r in range(world_size)
    ]
    codes = [p.wait() for p in procs]
    raise SystemExit(next((c for c in codes if c), 0))
