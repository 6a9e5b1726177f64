"""examples/run_grpo_32b.sh under a simulated one-node Slurm job (tests.support.simulated_slurm: the node's
address is 127.0.0.2) starts the Ray head, launches the real mc-train on the tiny config, which joins that cluster and
trains its first step; the job's exit status is the driver's and no Ray process outlives it."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import free_port, simulated_slurm, write_executable

from tests.driver.tiny_run import REPO, TINY_CONFIG, driver_env, metrics_rows, small_run_overrides

pytestmark = [pytest.mark.slow, pytest.mark.distributed]

SCRIPT = REPO / "examples" / "run_grpo_32b.sh"

MC_TRAIN = """#!/usr/bin/env bash
exec {python} -m megatron_mc.driver.cli "$@"
"""


def test_run_script_reaches_the_first_training_step(tmp_path):
    run_dir = tmp_path / "run"
    ray_tmp = Path("/tmp") / f"mcdrv_{os.getpid()}"  # short: Ray's socket paths have a length limit
    bin_dir = tmp_path / "bin"
    # not 127.0.0.1: Ray replaces that node address with the machine's own, which tests must not use
    env = {**driver_env(), **simulated_slurm(bin_dir, 1, f"{Path(sys.executable).parent}:{os.environ['PATH']}"),
           "SLURM_JOB_ID": "4243", "SLURM_CPUS_PER_TASK": "2", "SLURM_SUBMIT_DIR": str(REPO),
           "CONFIG": str(TINY_CONFIG), "RUN_DIR": str(run_dir), "GPUS_PER_NODE": "2", "RAY_NUM_GPUS": "0",
           "RAY_PORT": str(free_port()), "RAY_TMP_DIR": str(ray_tmp),
           "PYTHON": sys.executable,
           "MC_TRAIN": str(write_executable(bin_dir / "mc-train", MC_TRAIN.format(python=sys.executable)))}
    env.pop("HEAD_IP", None)
    run_dir.mkdir()
    try:
        result = subprocess.run(["bash", str(SCRIPT), *small_run_overrides(run_dir, 1)], env=env, cwd=tmp_path,
                                capture_output=True, text=True, timeout=400)
        assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
        assert "Ray cluster up: 1 nodes" in result.stdout
        rows = metrics_rows(run_dir)
        assert [r["step"] for r in rows] == [0, 1]
        assert rows[1]["weights/version"] == 1 and rows[1]["train/optimizer_steps"] == 2
        leftovers = subprocess.run(["pgrep", "-f", str(ray_tmp)], capture_output=True, text=True).stdout
        assert leftovers == "", leftovers
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
