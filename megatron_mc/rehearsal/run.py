"""`mc-train --config GPU_CONFIG --rehearse`: a GPU config's whole run shape on this machine, as the step
to take before submitting the cluster job.

  1. the config's layout on simulated nodes (rehearsal/cluster.py; or the running Ray cluster named by
     cluster.ray_address, as examples/run_grpo_32b.sh starts one) with a GPU memory ledger whose sizes
     come from the planner for the config's real model (rollout/gpu_ledger.py);
  2. mc-train on the rehearsal config (rehearsal/layout.py) for two RL steps and a checkpoint; the driver
     is then SIGKILLed, as a node failure or scancel would;
  3. no process of the killed run may be left (engines, routers, train actors);
  4. mc-train --resume auto: one more step and the final HF export;
  5. again no process left; the ledger's peaks per GPU are reported.

Any failure names its cause: the driver's own error (a deadline naming what is pending, the strict
engine naming the SGLang contract it broke, the ledger naming the GPU and phase over capacity).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from megatron_mc.config import RunConfig, dump_config, load_config
from megatron_mc.data.tiny_default import prepare_tiny_default
from megatron_mc.planning.memory import GIB
from megatron_mc.planning.cluster_layout import check_cluster_layout
from megatron_mc.planning.plan import make_plan
from megatron_mc.rehearsal.cluster import REHEARSAL_ENV, simulated_cluster
from megatron_mc.rehearsal.layout import STEPS, rehearsal_config, rehearsal_num_nodes, rehearsal_world_size
from megatron_mc.rehearsal.model import build_tiny_model
from megatron_mc.run_state import hf_export_dir, is_complete, step_dir, write_atomic

KILL_AFTER_CHECKPOINT = 2
EVAL_PROBLEMS = 2
# A raised exception's last traceback line (Ray's wrapper, RayTaskError(...), names the one inside it).
_RAISED = re.compile(r"^(?!ray\.exceptions\.RayTaskError)[\w.]*(Error|Exception|Exceeded): ")


class RehearsalFailed(RuntimeError):
    pass


def ledger_sizes(cfg: RunConfig) -> tuple[float, dict[str, dict[str, float]]]:
    """GPU capacity and what each holder books per phase, from the planner on the config's real model."""
    plan = make_plan(cfg)
    resident = sum(v for k, v in plan.train_bytes.items() if k in ("weights", "grads", "optimizer"))
    capacity = cfg.cluster.gpu_memory_gib * GIB
    return capacity, {
        "train": {"resident": resident, "training": plan.train_total, "weights": plan.train_bytes["weights"],
                  "offloaded": 0.0},
        "engine": {"serving": cfg.rollout.mem_fraction_static * capacity,
                   "weights": plan.engine_bytes["weights"], "released": 0.0}}


def rehearse(config_path: str, overrides: list[str], work_dir: str | None = None, timeout_s: float = 1500.0) -> int:
    cfg = load_config(config_path, overrides)
    check_cluster_layout(cfg)  # what the real cluster would refuse, before the layout is shrunk
    work = Path(work_dir or f"{cfg.run_dir}_rehearsal").resolve()
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    capacity, sizes = ledger_sizes(cfg)  # before anything starts: an unknown model fails fast
    hf_dir = build_tiny_model(cfg, work / "model")
    eval_file = work / "eval.jsonl"
    eval_file.write_text("\n".join(prepare_tiny_default().held_out_problems.read_text().splitlines()[:EVAL_PROBLEMS])
                         + "\n")
    _say(f"rehearsing {config_path}: {cfg.cluster.mode}, tp={cfg.parallel.tp} pp={cfg.parallel.pp} "
         f"cp={cfg.parallel.cp} ep={cfg.parallel.ep}, {rehearsal_world_size(cfg)} train ranks, "
         f"{cfg.rollout.num_engines} engines x tp {cfg.rollout.tp_size}, weight sync {cfg.rollout.weight_sync}")
    if cfg.cluster.ray_address:
        os.environ.update(REHEARSAL_ENV)
        return _rehearse_on(cfg, cfg.cluster.ray_address, work, hf_dir, eval_file, capacity, sizes, timeout_s)
    with simulated_cluster(rehearsal_num_nodes(cfg), cfg.cluster.gpus_per_node) as address:
        return _rehearse_on(cfg, address, work, hf_dir, eval_file, capacity, sizes, timeout_s)


def _rehearse_on(cfg: RunConfig, address: str, work: Path, hf_dir: Path, eval_file: Path, capacity: float,
                 sizes: dict, timeout_s: float) -> int:
    import ray

    from rollout.gpu_ledger import start_ledger

    run_dir = work / "run"
    rcfg = rehearsal_config(cfg, run_dir, hf_dir, eval_file, address)
    config_file = work / "rehearsal.yaml"
    write_atomic(config_file, dump_config(rcfg))
    ray.init(address=address, include_dashboard=False, logging_level="ERROR")
    try:
        ledger = start_ledger(capacity, sizes)
        deadline = time.monotonic() + timeout_s
        _say(f"{rcfg.cluster.num_nodes} simulated nodes of {rcfg.cluster.gpus_per_node} GPUs at {address}; "
             f"steps 1-{KILL_AFTER_CHECKPOINT}, then SIGKILL of the driver")
        first = _start_driver(config_file, work / "driver_1.log")
        _wait_for_checkpoint(first, step_dir(rcfg.checkpoint_dir, KILL_AFTER_CHECKPOINT), work / "driver_1.log",
                             deadline)
        _check_engine_addresses(work, run_dir)
        _check_aborts_reached_engines(work / "driver_1.log")
        first.send_signal(signal.SIGKILL)
        first.wait()
        _check_nothing_left(work, run_dir, "after the driver was killed")
        ray.get(ledger.clear.remote())  # the killed run's GPUs are free; the resumed run may place ranks elsewhere
        _say(f"driver killed after the step-{KILL_AFTER_CHECKPOINT} checkpoint; nothing left; resuming")
        second = _start_driver(config_file, work / "driver_2.log", "--resume", "auto")
        _wait_for_exit(second, work / "driver_2.log", deadline)
        _check_aborts_reached_engines(work / "driver_2.log")
        _check_run(rcfg, run_dir)
        _check_nothing_left(work, run_dir, "after the resumed run")
        report = ray.get(ledger.report.remote())
        write_atomic(work / "ledger.json", json.dumps(report, indent=1))
        peak = max(report["peak_gib"].values(), default=0.0)
        _say(f"PASSED: {STEPS} steps with a kill and resume, HF export at {hf_export_dir(run_dir, STEPS)}; "
             f"GPU memory peak {peak:.1f} of {report['capacity_gib']:.0f} GiB (ledger: {work / 'ledger.json'})")
        return 0
    except RehearsalFailed as e:
        _say(f"FAILED: {e}")
        return 1
    finally:
        ray.shutdown()


def _start_driver(config_file: Path, log: Path, *extra: str) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "megatron_mc.driver.cli", "--config", str(config_file),
                                 *extra], stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **REHEARSAL_ENV})


def _wait_for_checkpoint(driver: subprocess.Popen, folder: Path, log: Path, deadline: float) -> None:
    while not is_complete(folder):
        if driver.poll() is not None:
            raise RehearsalFailed(f"the driver exited with code {driver.returncode} before the step-"
                                  f"{KILL_AFTER_CHECKPOINT} checkpoint; {_cause(log)}")
        if time.monotonic() > deadline:
            driver.kill()
            raise RehearsalFailed(f"no step-{KILL_AFTER_CHECKPOINT} checkpoint within the rehearsal's time; "
                                  f"{_cause(log)}")
        time.sleep(1.0)


def _wait_for_exit(driver: subprocess.Popen, log: Path, deadline: float) -> None:
    try:
        code = driver.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        driver.kill()
        raise RehearsalFailed(f"the resumed driver did not finish within the rehearsal's time; {_cause(log)}") \
            from None
    if code != 0:
        raise RehearsalFailed(f"the resumed driver exited with code {code}; {_cause(log)}")


def _check_run(rcfg: RunConfig, run_dir: Path) -> None:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    steps = sorted({row["step"] for row in rows if row["step"] > 0})
    if steps != list(range(1, STEPS + 1)):
        raise RehearsalFailed(f"metrics.jsonl has steps {steps}, expected 1..{STEPS}")
    last = [row for row in rows if row["step"] == STEPS][-1]
    if last.get("weights/version") != STEPS:
        raise RehearsalFailed(f"step {STEPS} ran on weight version {last.get('weights/version')}")
    if not is_complete(hf_export_dir(run_dir, STEPS)):
        raise RehearsalFailed(f"no complete HF export at {hf_export_dir(run_dir, STEPS)}")


def _check_engine_addresses(work: Path, run_dir: Path) -> None:
    """Every engine server listens on its node's address (or all addresses), never on 127.0.0.1: no simulated
    node has that address, so a server bound there is one the router, the trainer's sending rank and the
    clients on other nodes of a real cluster could not reach. (Its HTTP port only: gloo, which the engines'
    weight-update groups use, stays on the loopback interface by design.)"""
    ports = {int(log.stem.rsplit("_", 1)[1]) for log in (run_dir / "logs").glob("engine_*_*.log")}
    engines = {p.pid for p in _run_processes(work, run_dir) if "--model-path" in (p.info["cmdline"] or [])}
    wrong = [f"{conn.laddr.ip}:{conn.laddr.port} (pid {conn.pid})" for conn in psutil.net_connections("tcp")
             if conn.status == psutil.CONN_LISTEN and conn.pid in engines and conn.laddr.port in ports
             and conn.laddr.ip == "127.0.0.1"]
    if wrong:
        raise RehearsalFailed("engine servers listen on 127.0.0.1, which no node of the cluster can reach from "
                              "another node: " + ", ".join(sorted(wrong)) + "; bind the node's address")


def _check_aborts_reached_engines(log: Path) -> None:
    """Requests the driver gives up on (dynamic sampling's surplus) must be aborted on the engines that run
    them; an abort that failed (e.g. sent where there is no such route: sglang-router answers 404) leaves
    them generating into the next phase. rollout/client.py reports each one."""
    failed = [line.strip() for line in log.read_text(errors="replace").splitlines()
              if "abort of " in line and " failed: " in line]
    if failed:
        raise RehearsalFailed(f"{len(failed)} aborts did not reach the engines, whose requests went on running; "
                              f"first: {failed[0][:400]}")


def _check_nothing_left(work: Path, run_dir: Path, when: str, timeout_s: float = 90.0) -> None:
    """No engine or router process and no Ray actor of the run (other than the ledger) outlives its driver."""
    from ray._private import state  # the GCS's actor table; the state API needs the dashboard

    from rollout.gpu_ledger import LEDGER_NAME

    deadline = time.monotonic() + timeout_s
    while True:
        processes = _run_processes(work, run_dir)
        actors = [a for a in state.actors().values() if a["State"] == "ALIVE" and a.get("Name") != LEDGER_NAME]
        if not processes and not actors:
            return
        if time.monotonic() > deadline:
            names = [f"pid {p.pid}: {' '.join(p.info['cmdline'] or [])[:160]}" for p in processes]
            names += [f"Ray actor {a['ActorClassName']} ({a['ActorID']}) on node {a['Address']['IPAddress']}"
                      for a in actors]
            raise RehearsalFailed(f"{len(names)} processes of the run still alive {when}: " + "; ".join(names))
        time.sleep(1.0)


def _run_processes(work: Path, run_dir: Path) -> list[psutil.Process]:
    """Engine servers name the rehearsal's model; routers the ports of the logs the run wrote."""
    ports = {log.stem.rsplit("_", 1)[1] for log in (run_dir / "logs").glob("*_*.log")}
    found = []
    for process in psutil.process_iter(["cmdline"]):
        command = " ".join(process.info["cmdline"] or [])
        if str(work) in command or any(re.search(rf":{port}(?!\d)", command) for port in ports if port.isdigit()):
            if process.pid != os.getpid():
                found.append(process)
    return found


def _cause(log: Path, lines: int = 25) -> str:
    """The first error the driver raised (what came after is the teardown it set off), and the log's tail."""
    text = log.read_text(errors="replace").splitlines() if log.exists() else []
    raised = [line.strip() for line in text if _RAISED.match(line.strip())]
    causes = raised or [line.strip() for line in text if line.startswith("mc-train:")]
    tail = "\n".join(text[-lines:])
    headline = f"cause: {causes[0]}\n" if causes else ""
    return f"{headline}driver log {log} ends with:\n{tail}"


def _say(message: str) -> None:
    print(f"[rehearsal] {message}", flush=True)
