"""What mc-study records in a run dir when it launches the run (RUN/study_launch.json), read back by
`mc-study status`: the local process (pid, then its exit code) or the Slurm job id."""
from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

from megatron_mc.run_state import write_atomic

RECORD_NAME = "study_launch.json"
LOG_NAME = "study.log"  # a local run's stdout and stderr, every attempt appended
LAUNCH_MARK = "==== mc-study launch"  # starts each attempt's part of the log


def write_record(run_dir: Path, **fields: Any) -> None:
    write_atomic(run_dir / RECORD_NAME, json.dumps({"time": time.time(), "host": socket.gethostname(), **fields}))


def read_record(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / RECORD_NAME
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: unreadable launch record ({e}); delete it to launch the run again") from None
