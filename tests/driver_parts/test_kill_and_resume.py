"""A run SIGKILLed mid-step or mid-save and resumed consumes the same problems in the same order as an
uninterrupted run, none skipped or repeated."""
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from megatron_mc.run_state import complete_checkpoints

WORKER = Path(__file__).with_name("resume_worker.py")
REPO = Path(__file__).resolve().parents[2]
TOTAL, BATCH, INTERVAL = 12, 5, 3


def _run(run_dir: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WORKER), str(run_dir), str(TOTAL), str(BATCH), str(INTERVAL),
                             *extra], stdout=subprocess.PIPE, text=True, cwd=REPO)


def _finish(run_dir: Path) -> tuple[str, list]:
    proc = _run(run_dir)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    return out.splitlines()[0], json.loads((run_dir / "history.json").read_text())


def _kill_when(proc: subprocess.Popen, line: str) -> list[str]:
    seen = []
    for got in proc.stdout:
        seen.append(got.strip())
        if got.strip() == line:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, seen
    return seen


@pytest.mark.parametrize("hang_in, hang_at, resumed_from", [("step", 8, 6), ("save", 9, 6)])
def test_sigkill_then_resume_replays_the_same_problems(tmp_path, hang_in, hang_at, resumed_from):
    first, reference = _finish(tmp_path / "uninterrupted")
    assert first == "resumed 0"

    killed = tmp_path / "killed"
    proc = _run(killed, "--hang-in", hang_in, "--hang-at", str(hang_at))
    marker = f"step {hang_at}" if hang_in == "step" else f"saving {hang_at}"
    seen = _kill_when(proc, marker)
    assert f"step {hang_at}" in seen

    first, resumed = _finish(killed)
    assert first == f"resumed {resumed_from}"
    assert resumed == reference
    assert [h["step"] for h in resumed] == list(range(1, TOTAL + 1))
    consumed = [i for h in resumed for i in h["problems"]]
    epoch = 13
    for start in range(0, len(consumed) - epoch + 1, epoch):
        assert sorted(consumed[start:start + epoch]) == list(range(epoch))
    assert [p.name for p in complete_checkpoints(killed / "checkpoints")] == ["step_000009", "step_000012"]
