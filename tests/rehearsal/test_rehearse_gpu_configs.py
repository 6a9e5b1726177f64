"""`mc-train --config GPU_CONFIG --rehearse` passes for the shipped GPU configs: the config's placement and
parallel layout on simulated loopback nodes with Ray GPU resources, the strict SGLang-contract engines, the
GPU memory ledger, two RL steps, a checkpoint, SIGKILL of the driver, --resume auto, a third step, the HF
export, and no process of the run left. (The 32B config is rehearsed through examples/run_grpo_32b.sh in
tests/rehearsal/test_slurm_rehearsal.py.)"""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Ray gives a starting node a fixed 30 s to register (ray/_private/node.py); simulated nodes starting on two
# shared cores can miss it. That is this machine's limit, not the rehearsal's: start it once more.
RAY_NODE_STARTUP_TIMEOUT = "The current node timed out during startup"

pytestmark = [pytest.mark.slow, pytest.mark.distributed, pytest.mark.rehearsal, pytest.mark.timeout(1800)]


def rehearse(config: str, tmp_path: Path, *overrides: str, timeout_s: float = 1700) -> subprocess.CompletedProcess:
    """Run the rehearsal in a session of its own, so that a timeout also stops the simulated nodes it started."""
    sets = [arg for item in (f"run_dir={tmp_path / 'run'}", *overrides) for arg in ("--set", item)]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(REPO), "RAY_DEDUP_LOGS": "0"}
    command = [sys.executable, "-m", "megatron_mc.driver.cli", "--config",
               str(REPO / "examples" / "configs" / f"{config}.yaml"), "--rehearse", *sets]
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        out, err = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
    return subprocess.CompletedProcess(command, process.returncode, out, err)


@pytest.mark.parametrize("config", ["qwen3_4b_microcoder_grpo", "qwen3_30b_a3b_moe"])
def test_gpu_config_rehearsal_passes(config, tmp_path):
    result = rehearse(config, tmp_path)
    if RAY_NODE_STARTUP_TIMEOUT in result.stdout + result.stderr:
        result = rehearse(config, tmp_path)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    assert "[rehearsal] PASSED" in result.stdout
    ledger = json.loads((tmp_path / "run_rehearsal" / "ledger.json").read_text())
    assert ledger["peak_gib"] and max(ledger["peak_gib"].values()) <= ledger["capacity_gib"]
    assert any("offloaded" in h for h in ledger["history"]) and any("released" in h for h in ledger["history"])
