"""`mc-study launch` with a Slurm launcher, against a simulated sbatch and squeue (tests.support.write_executable):
one job array (or one job per run) through the study's launch script, which each task runs with its run's
CONFIG and RUN_DIR; status reads the queue; launching again submits only the runs whose job ended unfinished."""
import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

from megatron_mc.config import load_config
from megatron_mc.study.cli import main
from tests.study.study_files import write_study
from tests.support import write_executable

# sbatch: logs its arguments and the environment the job would get, answers job ids 500, 501, ...
FAKE_SBATCH = """#!{python}
import json, os, sys
log = os.path.join(os.path.dirname(sys.argv[0]), "sbatch_calls.jsonl")
calls = open(log).read().splitlines() if os.path.exists(log) else []
env = {{k: os.environ.get(k) for k in ("CONFIG", "RUN_DIR", "RESUME", "MODEL_DIR")}}
open(log, "a").write(json.dumps({{"argv": sys.argv[1:], "env": env}}) + "\\n")
print(500 + len(calls))
"""
# squeue -h -j ID -o %T: the state queue.json gives the job, nothing once it left the queue
# (a state "ERROR: ..." is squeue failing with that message, as on a busy slurmctld)
FAKE_SQUEUE = """#!{python}
import json, os, sys
queue = json.load(open(os.path.join(os.path.dirname(sys.argv[0]), "queue.json")))
state = queue.get(sys.argv[sys.argv.index("-j") + 1], "")
if state.startswith("ERROR: "):
    sys.exit("slurm_load_jobs error: " + state[7:])
print(state)
"""
LAUNCH_SCRIPT = """#!/usr/bin/env bash
# the study's launch script: records what the job gave it
#SBATCH --nodes=3
#SBATCH --time=1:00:00
set -euo pipefail
printf '%s\\n' "$CONFIG" "$RUN_DIR" "$RESUME" "$*" >"$RUN_DIR/job_ran.txt"
"""


def simulated_queue(bin_dir: Path, monkeypatch) -> Path:
    bin_dir.mkdir()
    write_executable(bin_dir / "sbatch", FAKE_SBATCH.format(python=sys.executable))
    write_executable(bin_dir / "squeue", FAKE_SQUEUE.format(python=sys.executable))
    (bin_dir / "queue.json").write_text("{}")
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return bin_dir


def sbatch_calls(bin_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (bin_dir / "sbatch_calls.jsonl").read_text().splitlines()]


def mc_study(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(args))
    return code, out.getvalue()


def slurm_study(folder: Path, **launcher) -> Path:
    script = write_executable(folder / "launch.sh", LAUNCH_SCRIPT)
    return write_study(folder, "sl", axes={"algo.preset": ["grpo", "dapo"]}, seeds=[1],
                       launcher={"kind": "slurm", "script": script.name, **launcher})


def test_job_array_runs_each_run_through_the_launch_script_and_resubmits_the_unfinished(tmp_path, monkeypatch):
    bin_dir = simulated_queue(tmp_path / "bin", monkeypatch)
    path = slurm_study(tmp_path, array=True, max_concurrent=1, sbatch_args=["--partition=test"],
                       env={"MODEL_DIR": "/models/m"})
    code, out = mc_study("launch", str(path))
    assert code == 0, out
    [call] = sbatch_calls(bin_dir)
    *options, array_script = call["argv"]
    out_dir = tmp_path / "sl"
    assert options == ["--parsable", "--array=0-1%1", "--job-name=sl", f"--output={out_dir}/slurm/%x-%A_%a.out",
                       "--partition=test"]
    assert call["env"]["MODEL_DIR"] == "/models/m" and call["env"]["RESUME"] == "auto"
    assert "#SBATCH --nodes=3\n#SBATCH --time=1:00:00\n" in Path(array_script).read_text()

    env = {**os.environ, "SLURM_ARRAY_TASK_ID": "1", "RESUME": "auto"}
    subprocess.run(["bash", array_script, "--set", "train.lr=1e-5"], env=env, check=True)  # task 1 of the job
    run_dir = out_dir / "preset-dapo_seed1"
    config, given_run_dir, resume, args = (run_dir / "job_ran.txt").read_text().splitlines()
    assert (given_run_dir, resume, args) == (str(run_dir), "auto", "--set train.lr=1e-5")
    cfg = load_config(config)
    assert (cfg.algo.preset, cfg.train.seed, cfg.run_dir) == ("dapo", 1, str(run_dir))
    assert not (out_dir / "preset-grpo_seed1" / "job_ran.txt").exists()

    (bin_dir / "queue.json").write_text(json.dumps({"500_0": "RUNNING"}))  # task 1 has left the queue
    _, status = mc_study("status", str(path))
    lines = {line.split()[0]: line for line in status.splitlines()[1:-1]}
    assert lines["preset-grpo_seed1"].split()[1] == "running" and "slurm job 500_0: RUNNING" in status
    assert lines["preset-dapo_seed1"].split()[1] == "failed"
    assert f"see its output ({out_dir}/slurm/sl-500_1.out)" in lines["preset-dapo_seed1"]

    code, out = mc_study("launch", str(path))
    assert code == 0 and "preset-grpo_seed1: running (slurm job 500_0: RUNNING), not submitted" in out
    assert sbatch_calls(bin_dir)[1]["argv"][1] == "--array=0-0%1"  # only the failed run, again
    assert f"RUN_DIRS=({run_dir})" in Path(sbatch_calls(bin_dir)[1]["argv"][-1]).read_text()


def test_without_array_each_run_is_its_own_job_with_its_config(tmp_path, monkeypatch):
    bin_dir = simulated_queue(tmp_path / "bin", monkeypatch)
    path = slurm_study(tmp_path)
    code, out = mc_study("launch", str(path))
    assert code == 0 and "preset-dapo_seed1: submitted job 501" in out
    calls = sbatch_calls(bin_dir)
    for call, name in zip(calls, ("preset-grpo_seed1", "preset-dapo_seed1")):
        run_dir = tmp_path / "sl" / name
        assert call["argv"] == ["--parsable", "--job-name=sl", f"--output={run_dir}/slurm-%j.out",
                                str(tmp_path / "launch.sh")]
        assert call["env"]["CONFIG"] == str(run_dir / "study_config.yaml") and call["env"]["RUN_DIR"] == str(run_dir)
        assert load_config(call["env"]["CONFIG"]).run_dir == str(run_dir)


def test_a_failing_squeue_neither_fails_the_run_nor_submits_it_again(tmp_path, monkeypatch):
    bin_dir = simulated_queue(tmp_path / "bin", monkeypatch)
    path = slurm_study(tmp_path)
    assert mc_study("launch", str(path))[0] == 0  # jobs 500 (grpo) and 501 (dapo)
    submitted = len(sbatch_calls(bin_dir))
    (bin_dir / "queue.json").write_text(json.dumps({"500": "ERROR: Socket timed out on send/recv operation",
                                                    "501": "ERROR: Invalid job id specified"}))
    code, output = mc_study("launch", str(path))
    assert code == 0, output
    assert len(sbatch_calls(bin_dir)) == submitted + 1  # only the job squeue says is gone goes again
    assert "preset-grpo_seed1: running (slurm job 500: UNKNOWN (squeue failed: slurm_load_jobs error: Socket " \
           "timed out on send/recv operation)), not submitted" in output
