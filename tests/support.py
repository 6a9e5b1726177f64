"""Small helpers shared by tests in several folders."""
import socket
import stat
from pathlib import Path

FAKE_SRUN = """#!/usr/bin/env bash
# srun for one machine: drop srun's own options, run the command in place
while [[ $# -gt 0 && $1 == -* ]]; do
  case $1 in
    -w|-N|-n|--nodelist) shift 2 ;;
    *) shift ;;
  esac
done
exec "$@"
"""


def write_executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
