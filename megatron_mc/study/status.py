"""Where each run of a study stands, from its run dir alone: pending, running, complete, failed or
interrupted, its last logged step, its last held-out figures and, when it failed, why.

complete: a complete checkpoint of the last step (train.max_steps) exists; the driver writes one at the end.
running: the local process recorded at launch is alive, or the run's Slurm job is still queued or running.
failed: the local process exited with an error (the reason is its last error line), or a Slurm job
  ended before its first checkpoint.
interrupted: started, then stopped (SIGTERM, Ctrl-C) or killed before the end: `launch` resumes it.
pending: never launched.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from megatron_mc.driver.run import STOPPED_EXIT_CODE
from megatron_mc.metrics.sinks import METRICS_FILE, parse_metrics_lines
from megatron_mc.run_state import is_complete, list_step_dirs
from megatron_mc.study.launch_record import LAUNCH_MARK, LOG_NAME, read_record
from megatron_mc.study.runs import StudyRun

INTERRUPTED_EXIT_CODE = 130  # mc-train after Ctrl-C


@dataclass
class RunStatus:
    state: str
    step: int | None = None  # the last logged step
    held_out: dict[str, float] = field(default_factory=dict)  # eval/pass@k of the last evaluation
    reason: str = ""  # failed: why; running/pending: which process or job


def _progress(run: StudyRun) -> tuple[int | None, dict[str, float]]:
    path = run.run_dir / METRICS_FILE
    rows = parse_metrics_lines(path) if path.exists() else []
    evaluated = [row for row in rows if "eval/pass@1" in row]
    held_out = {k: v for k, v in evaluated[-1].items() if k.startswith("eval/pass@")} if evaluated else {}
    return (rows[-1]["step"] if rows else None), held_out


def error_line(log: Path) -> str:
    """The last attempt's error (the log holds every attempt, each after a LAUNCH_MARK line): the driver's own
    message (`mc-train: ...`), else the attempt's last line."""
    text = log.read_text(errors="replace").rsplit(LAUNCH_MARK, 1)[-1] if log.exists() else ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    own = [line for line in lines if line.startswith("mc-train:")]
    return (own or lines or [f"no output in {log}"])[-1]


def slurm_job_state(job_id: str) -> str | None:
    """The job's state in the Slurm queue (PENDING, RUNNING, ...), None once it left the queue. When squeue
    fails otherwise (slurmctld busy, a timeout) the state is UNKNOWN: such a run counts as running, so that
    `launch` never submits a second job into a run dir a job may still write."""
    if shutil.which("squeue") is None:
        return "UNKNOWN (no squeue on this machine)"
    out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True)
    if out.returncode != 0:
        if "Invalid job id" in out.stderr:  # purged from slurmctld's memory: long gone
            return None
        return f"UNKNOWN (squeue failed: {out.stderr.strip()[-200:] or f'exit code {out.returncode}'})"
    return out.stdout.strip() or None


def _alive(record: dict) -> bool:
    """The recorded process still runs (on another host: assumed so); a reused pid has another start time."""
    if record["host"] != socket.gethostname():
        return True
    try:
        return psutil.Process(record["pid"]).create_time() == record["started"]
    except psutil.NoSuchProcess:
        return False


def run_status(run: StudyRun) -> RunStatus:
    step, held_out = _progress(run)
    checkpoints = [s for s, folder in list_step_dirs(run.config.checkpoint_dir) if is_complete(folder)]
    if checkpoints and checkpoints[-1] >= run.config.train.max_steps:
        return RunStatus("complete", step, held_out)
    record = read_record(run.run_dir)
    if record is None:
        return RunStatus("interrupted" if step is not None or checkpoints else "pending", step, held_out)
    if "job_id" in record:
        queued = slurm_job_state(record["job_id"])
        if queued is not None:
            state = "pending" if queued == "PENDING" else "running"
            return RunStatus(state, step, held_out, f"slurm job {record['job_id']}: {queued}")
        if checkpoints:
            return RunStatus("interrupted", step, held_out, f"slurm job {record['job_id']} ended")
        return RunStatus("failed", step, held_out, f"slurm job {record['job_id']} ended before its first "
                                                   f"checkpoint; see its output ({record.get('log', 'slurm-*.out')})")
    returncode = record.get("returncode")
    if returncode is None:
        if _alive(record):
            return RunStatus("running", step, held_out, f"pid {record['pid']} on {record['host']}")
        return RunStatus("interrupted", step, held_out, "the process was killed")
    if returncode < 0 or returncode in (0, STOPPED_EXIT_CODE, INTERRUPTED_EXIT_CODE):  # < 0: killed by a signal
        return RunStatus("interrupted", step, held_out, f"stopped at step {step} (exit code {returncode})")
    return RunStatus("failed", step, held_out, f"exit code {returncode}: {error_line(run.run_dir / LOG_NAME)}")
