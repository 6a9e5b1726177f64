"""`mc-study launch` with launcher kind slurm: one Slurm job per run through the study's launch script
(examples/run_grpo_32b.sh reads CONFIG, RUN_DIR and RESUME from its environment), or one job array whose
task i runs the i-th run through that script, at most launcher.max_concurrent at once. Complete runs and
runs whose job is still queued or running are not submitted again; interrupted ones resume (RESUME=auto)."""
from __future__ import annotations

import os
import shlex
import subprocess
import time
from pathlib import Path
from typing import Callable

from megatron_mc.run_state import write_atomic
from megatron_mc.study.launch_record import write_record
from megatron_mc.study.runs import StudyRun
from megatron_mc.study.status import run_status
from megatron_mc.study.study_file import Study

ARRAY_DISPATCH = """
# mc-study job array: task i runs the i-th run below through {script}
set -euo pipefail
RUN_DIRS=({run_dirs})
export RUN_DIR=${{RUN_DIRS[$SLURM_ARRAY_TASK_ID]}}
export CONFIG=$RUN_DIR/{config_name}
exec bash {script} "$@"
"""


def sbatch_directives(script: Path) -> list[str]:
    """The script's leading #SBATCH lines (sbatch reads them only up to the first command)."""
    lines = []
    for line in script.read_text().splitlines()[1:]:
        if line.strip() and not line.startswith("#"):
            break
        if line.startswith("#SBATCH"):
            lines.append(line)
    return lines


def write_array_script(study: Study, runs: list[StudyRun]) -> Path:
    """A batch script carrying the launch script's #SBATCH settings that hands each array task its run."""
    path = study.out / "slurm" / f"array_{time.strftime('%Y%m%d_%H%M%S')}.sh"
    body = ARRAY_DISPATCH.format(script=shlex.quote(str(study.script)), config_name=runs[0].config_file.name,
                                 run_dirs=" ".join(shlex.quote(str(run.run_dir)) for run in runs))
    write_atomic(path, "\n".join(["#!/usr/bin/env bash", *sbatch_directives(study.script)]) + "\n" + body)
    return path


def sbatch(args: list[str], env: dict[str, str]) -> str:
    """Submit; returns the job id (`sbatch --parsable` prints `ID` or `ID;CLUSTER`)."""
    result = subprocess.run(["sbatch", "--parsable", *args], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"sbatch {shlex.join(args)} failed (exit {result.returncode}): {result.stderr.strip()}")
    return result.stdout.strip().split(";")[0]


def launch_slurm(study: Study, runs: list[StudyRun], say: Callable[[str], None] = print) -> int:
    launcher = study.spec.launcher
    todo = []
    for run in runs:
        status = run_status(run)
        if status.state in ("complete", "running") or (status.state == "pending" and status.reason):  # queued
            say(f"{run.name}: {status.state}{f' ({status.reason})' if status.reason else ''}, not submitted")
        else:
            run.write_config()
            todo.append(run)
    if not todo:
        return 0
    env = {**os.environ, **launcher.env, "RESUME": "auto"}
    name = f"--job-name={study.name}"
    if launcher.array:
        limit = f"%{launcher.max_concurrent}" if launcher.max_concurrent else ""
        log = study.out / "slurm" / "%x-%A_%a.out"
        job = sbatch([f"--array=0-{len(todo) - 1}{limit}", name, f"--output={log}", *launcher.sbatch_args,
                      str(write_array_script(study, todo))], env)
        for i, run in enumerate(todo):
            task_log = str(log).replace("%x", study.name).replace("%A", job).replace("%a", str(i))
            write_record(run.run_dir, launcher="slurm", job_id=f"{job}_{i}", log=task_log)
        at_once = f", at most {launcher.max_concurrent} at once" if limit else ""
        say(f"submitted job array {job}: {len(todo)} runs{at_once}")
        return 0
    for run in todo:
        log = run.run_dir / "slurm-%j.out"
        job = sbatch([name, f"--output={log}", *launcher.sbatch_args, str(study.script)],
                     {**env, "CONFIG": str(run.config_file), "RUN_DIR": str(run.run_dir)})
        write_record(run.run_dir, launcher="slurm", job_id=job, log=str(log).replace("%j", job))
        say(f"{run.name}: submitted job {job}")
    return 0
