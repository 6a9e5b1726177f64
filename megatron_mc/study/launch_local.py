"""`mc-study launch` with launcher kind local: the runs one after another on this machine, each as
`mc-train --config RUN/study_config.yaml --resume auto` (a fresh start, or the newest checkpoint of an
interrupted run), its output in RUN/study.log. Complete runs are skipped."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Callable

import psutil

from megatron_mc.study.launch_record import LAUNCH_MARK, LOG_NAME, write_record
from megatron_mc.study.runs import StudyRun
from megatron_mc.study.status import run_status

MC_TRAIN = [sys.executable, "-m", "megatron_mc.driver.cli"]


def train_command(run: StudyRun) -> list[str]:
    return [*MC_TRAIN, "--config", str(run.config_file), "--resume", "auto"]


def run_one(run: StudyRun) -> int:
    run.write_config()
    with open(run.run_dir / LOG_NAME, "a") as log:
        log.write(f"{LAUNCH_MARK} {time.strftime('%Y-%m-%d %H:%M:%S')} ====\n")
        log.flush()
        proc = subprocess.Popen(train_command(run), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})  # the log follows the run
        write_record(run.run_dir, launcher="local", pid=proc.pid, started=psutil.Process(proc.pid).create_time())
        try:
            returncode = proc.wait()
        except KeyboardInterrupt:  # the driver got the same SIGINT: it stops what it started, then exits
            returncode = proc.wait()
            write_record(run.run_dir, launcher="local", pid=proc.pid, returncode=returncode)
            raise
    write_record(run.run_dir, launcher="local", pid=proc.pid, returncode=returncode)
    return returncode


def launch_local(runs: list[StudyRun], say: Callable[[str], None] = print) -> int:
    """Returns 0 when every run is complete at the end, else 1."""
    failed = []
    for i, run in enumerate(runs, 1):
        status = run_status(run)
        if status.state in ("complete", "running"):
            say(f"[{i}/{len(runs)}] {run.name}: {status.state}, skipped")
            continue
        resumed = " (resuming)" if status.state == "interrupted" else ""
        say(f"[{i}/{len(runs)}] {run.name}{resumed}: mc-train, output in {run.run_dir / LOG_NAME}")
        if run_one(run) != 0:
            failed.append(run.name)
            after = run_status(run)
            say(f"[{i}/{len(runs)}] {run.name}: {after.state}: {after.reason}")
    if failed:
        say(f"{len(failed)} of {len(runs)} runs did not complete: {', '.join(failed)}")
    return 1 if failed else 0
