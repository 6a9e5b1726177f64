"""examples/run_grpo_32b.sh: shell syntax, shellcheck, and a launch under a simulated one-node Slurm job
(tests.support.simulated_slurm: the node's address is 127.0.0.2; mc-train stood in by a script that joins
the Ray cluster and records what it was given): the Ray head comes up, the driver gets the right
overrides, its exit status is the job's, and nothing of Ray is left running afterwards."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import free_port, simulated_slurm, write_executable

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "examples" / "run_grpo_32b.sh"
VENV_BIN = Path(sys.executable).parent

FAKE_TRAIN = """#!{python}
import json, os, sys
import ray
args = sys.argv[1:]
sets = dict(args[i + 1].split("=", 1) for i, a in enumerate(args) if a == "--set")
ray.init(address=sets["cluster.ray_address"], logging_level="ERROR")
addresses = [node["NodeManagerAddress"] for node in ray.nodes() if node["Alive"]]
ray.shutdown()
with open(os.path.join(sets["run_dir"], "fake_train.json"), "w") as f:
    json.dump({{"argv": args, "addresses": addresses}}, f)
sys.exit(3)
"""


def test_bash_syntax():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_shellcheck_clean():
    shellcheck = shutil.which("shellcheck") or shutil.which("shellcheck", path=str(VENV_BIN))
    if shellcheck is None:
        pytest.skip("shellcheck is not installed")
    result = subprocess.run([shellcheck, str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


@pytest.mark.slow
@pytest.mark.distributed
def test_simulated_one_node_slurm_launch(tmp_path):
    run_dir = tmp_path / "run"
    ray_tmp = Path("/tmp") / f"mcray_{os.getpid()}"  # short: Ray's socket paths have a length limit
    port = free_port()
    # not 127.0.0.1: Ray replaces that node address with the machine's own, which tests must not use
    env = {**os.environ, **simulated_slurm(tmp_path / "bin", 1, f"{VENV_BIN}:{os.environ['PATH']}"),
           "SLURM_JOB_ID": "4242", "SLURM_CPUS_PER_TASK": "2", "SLURM_SUBMIT_DIR": str(REPO),
           "CONFIG": str(REPO / "examples" / "configs" / "tiny_cpu.yaml"), "RUN_DIR": str(run_dir),
           "GPUS_PER_NODE": "2", "RAY_NUM_GPUS": "0",
           "RAY_PORT": str(port), "RAY_TMP_DIR": str(ray_tmp), "PYTHON": sys.executable,
           "MC_TRAIN": str(write_executable(tmp_path / "mc-train", FAKE_TRAIN.format(python=sys.executable)))}
    env.pop("HEAD_IP", None)
    try:
        result = subprocess.run(["bash", str(SCRIPT), "--set", "train.max_steps=1"], env=env, cwd=tmp_path,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 3, result.stdout + result.stderr  # the driver's exit status
        seen = json.loads((run_dir / "fake_train.json").read_text())
        assert seen["addresses"] == ["127.0.0.2"]
        argv = seen["argv"]
        assert argv[:2] == ["--config", env["CONFIG"]]
        sets = [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]
        assert sets == [f"run_dir={run_dir}", "cluster.num_nodes=1", "cluster.gpus_per_node=2",
                        f"cluster.ray_address=127.0.0.2:{port}", "train.max_steps=1"]
        assert argv[-4:-2] == ["--resume", "auto"]
        assert "Ray cluster up: 1 nodes" in result.stdout
        leftovers = subprocess.run(["pgrep", "-f", str(ray_tmp)], capture_output=True, text=True).stdout
        assert leftovers == "", leftovers
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
