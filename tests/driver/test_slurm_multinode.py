"""examples/run_grpo_32b.sh under a simulated two-node Slurm job (tests.support.simulated_slurm): each
node's srun runs here as that node, with its own loopback address, so the head binds 127.0.0.2 and the
worker 127.0.0.3, each found on its node from NET_IF. The job waits for both nodes and all their GPUs,
then runs a stand-in driver; a node whose srun dies fails the job at once, naming the node."""
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import free_port, simulated_slurm, srun_calls, write_executable

pytestmark = [pytest.mark.slow, pytest.mark.distributed]

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "examples" / "run_grpo_32b.sh"
VENV_BIN = Path(sys.executable).parent

# Joins the cluster, runs one task on each node and records what each saw.
STAND_IN_TRAIN = """#!{python}
import json, os, sys
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
args = sys.argv[1:]
sets = dict(args[i + 1].split("=", 1) for i, a in enumerate(args) if a == "--set")
ray.init(address=sets["cluster.ray_address"], logging_level="ERROR")

PASSED_ON = ("CUDA_DEVICE_MAX_CONNECTIONS", "NCCL_IB_GID_INDEX", "NCCL_IB_HCA")

def open_files_soft_limit(pid):
    with open(f"/proc/{{pid}}/limits") as f:
        return next(int(line.split()[3]) for line in f if line.startswith("Max open files"))

@ray.remote(num_cpus=0)
def where():  # the worker's parent is its node's raylet
    return {{"ip": ray.util.get_node_ip_address(), "raylet_open_files": open_files_soft_limit(os.getppid()),
            "env": {{k: os.environ.get(k) for k in PASSED_ON}}}}

nodes = [n for n in ray.nodes() if n["Alive"]]
seen = ray.get([where.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote()
                for n in nodes], timeout=60)
gpus = ray.cluster_resources().get("GPU", 0)
ray.shutdown()
print("stand-in driver: nodes", sorted(task["ip"] for task in seen), "GPUs", gpus)
with open(os.path.join(sets["run_dir"], "stand_in.json"), "w") as f:
    json.dump({{"argv": args, "tasks": seen, "gpus": gpus}}, f)
"""


def _job_env(tmp_path: Path, ray_tmp: Path, num_nodes: int) -> dict:
    bin_dir = tmp_path / "bin"
    env = {**os.environ, **simulated_slurm(bin_dir, num_nodes, f"{VENV_BIN}:{os.environ['PATH']}"),
           "SLURM_JOB_ID": "4244", "SLURM_CPUS_PER_TASK": "1", "SLURM_SUBMIT_DIR": str(REPO),
           "CONFIG": str(REPO / "examples" / "configs" / "tiny_cpu.yaml"), "RUN_DIR": str(tmp_path / "run"),
           "GPUS_PER_NODE": "2", "RAY_NUM_GPUS": "2", "RAY_PORT": str(free_port()),
           "RAY_TMP_DIR": str(ray_tmp), "RAY_START_TIMEOUT_S": "120", "PYTHON": sys.executable,
           "MC_TRAIN": str(write_executable(tmp_path / "mc-train", STAND_IN_TRAIN.format(python=sys.executable)))}
    for name in ("HEAD_IP", "CUDA_DEVICE_MAX_CONNECTIONS", "SIM_DEAD_NODES", "NCCL_IB_GID_INDEX", "NCCL_IB_HCA"):
        env.pop(name, None)
    return env


def _ray_leftovers(ray_tmp: Path) -> str:
    return subprocess.run(["pgrep", "-af", str(ray_tmp)], capture_output=True, text=True).stdout


def test_two_simulated_nodes_join_with_their_own_addresses_and_gpus(tmp_path):
    ray_tmp = Path("/tmp") / f"mcsim_{os.getpid()}"  # short: Ray's socket paths have a length limit
    env = {**_job_env(tmp_path, ray_tmp, num_nodes=2), "REHEARSE": "1", "NCCL_IB_GID_INDEX": "3", "NCCL_IB_HCA": ""}
    try:
        # a low soft limit on open files, as many nodes have, which the script must raise on every node
        result = subprocess.run(["bash", "-c", f'ulimit -Sn 1024 && exec bash "{SCRIPT}"'], env=env, cwd=tmp_path,
                                capture_output=True, text=True, timeout=180)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-4000:]
        assert "Ray cluster up: 2 nodes, 4 GPUs (127.0.0.2, 127.0.0.3)" in result.stdout, output[-4000:]
        seen = json.loads((tmp_path / "run" / "stand_in.json").read_text())
        tasks = seen["tasks"]
        assert sorted(task["ip"] for task in tasks) == ["127.0.0.2", "127.0.0.3"]
        # what the Ray workers (train actors, engines) inherit on each node; an empty NCCL_IB_HCA is not passed on
        assert [task["env"] for task in tasks] == [
            {"CUDA_DEVICE_MAX_CONNECTIONS": "1", "NCCL_IB_GID_INDEX": "3", "NCCL_IB_HCA": None}] * 2
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        assert [task["raylet_open_files"] for task in tasks] == [min(hard, 65536)] * 2
        assert seen["gpus"] == 4
        assert seen["argv"][-1] == "--rehearse"
        calls = srun_calls(tmp_path / "bin")
        assert sorted(node for node, _ in calls) == ["simnode0", "simnode1"]
        for _, options in calls:
            assert "--cpus-per-task=1" in options and "--gpus-per-node=2" in options, options
            assert "--overlap" in options and "--export=ALL" in options, options
        assert _ray_leftovers(ray_tmp) == ""
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)


def test_a_node_whose_srun_dies_fails_the_job_at_once_naming_it(tmp_path):
    ray_tmp = Path("/tmp") / f"mcsid_{os.getpid()}"
    env = {**_job_env(tmp_path, ray_tmp, num_nodes=2), "SIM_DEAD_NODES": "simnode1"}
    try:
        start = time.monotonic()
        result = subprocess.run(["bash", str(SCRIPT)], env=env, cwd=tmp_path, capture_output=True, text=True,
                                timeout=180)
        elapsed = time.monotonic() - start
        assert result.returncode != 0
        assert elapsed < 60, f"took {elapsed:.0f} s of RAY_START_TIMEOUT_S=120"
        assert "Ray srun on node simnode1 exited (status 1)" in result.stderr, result.stderr[-3000:]
        assert "simulated lost node" in result.stderr  # the tail of its log
        assert not (tmp_path / "run" / "stand_in.json").exists()
        assert _ray_leftovers(ray_tmp) == ""
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
