"""Servers started through rollout.process.start_process die with the process that started them (real
processes, real signals), while stop_process, exit codes and pids behave as they did without the guard."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from rollout.process import start_process, stop_process

REPO = Path(__file__).resolve().parents[2]

# A server stand-in with a child of its own; it writes both pids and then sleeps.
SERVER = textwrap.dedent("""
    import json, os, subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    with open(sys.argv[1] + ".tmp", "w") as f:
        json.dump({"server": os.getpid(), "child": child.pid}, f)
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    time.sleep(600)
""")

# The starter stands in for a Ray actor: it starts the server from a thread that then exits (the case a
# plain PR_SET_PDEATHSIG gets wrong), then lives on until it is killed.
STARTER = textwrap.dedent("""
    import sys, threading, time
    from pathlib import Path
    from rollout.process import start_process
    server, pids, log = sys.argv[1:4]
    thread = threading.Thread(target=start_process, args=([sys.executable, server, pids], Path(log)))
    thread.start()
    thread.join()
    time.sleep(600)
""")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _group_members(pgid: int) -> list[int]:
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and _alive(proc.pid):
                members.append(proc.pid)
        except (ProcessLookupError, psutil.NoSuchProcess):
            pass
    return members


def _wait_for(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout_s} s")
        time.sleep(0.05)


def _read_pids(path: Path) -> dict:
    _wait_for(path.exists, 30, f"the server did not write {path}")
    return json.loads(path.read_text())


@pytest.fixture
def server_script(tmp_path):
    path = tmp_path / "server.py"
    path.write_text(SERVER)
    return path


def test_killing_the_starter_stops_the_server_and_its_children(tmp_path, server_script):
    pids_file, log = tmp_path / "pids.json", tmp_path / "server.log"
    starter = subprocess.Popen([sys.executable, "-c", STARTER, str(server_script), str(pids_file), str(log)],
                               cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        pids = _read_pids(pids_file)
        time.sleep(1.0)  # past two of the watchdog's polls: the exited starting thread must not stop the server
        assert _alive(pids["server"]) and _alive(pids["child"]), "the server died with the thread that started it"
        starter.kill()
        starter.wait()
        _wait_for(lambda: not _alive(pids["server"]) and not _alive(pids["child"]), 8,
                  "the server or its child outlived the SIGKILLed starter")
        _wait_for(lambda: not _group_members(pids["server"]), 8, "the server's process group was not emptied")
        assert "the starting process" in log.read_text()
    finally:
        starter.kill()
        starter.wait()
        for pid in _group_members(pids["server"]) if pids_file.exists() else []:
            os.kill(pid, signal.SIGKILL)


def test_stop_process_stops_the_group_and_keeps_the_server_pid(tmp_path, server_script):
    pids_file = tmp_path / "pids.json"
    process = start_process([sys.executable, str(server_script), str(pids_file)], tmp_path / "server.log")
    pids = _read_pids(pids_file)
    assert pids["server"] == process.pid and os.getpgid(process.pid) == process.pid
    stop_process(process)
    assert process.returncode == -signal.SIGTERM
    _wait_for(lambda: not _group_members(process.pid), 5, "stop_process left members of the server's group")
    assert not _alive(pids["child"])


def test_exit_status_and_a_direct_kill_are_the_servers_own(tmp_path):
    log = tmp_path / "server.log"
    exits = start_process([sys.executable, "-c", "import sys; print('bye'); sys.exit(7)"], log)
    assert exits.wait(timeout=30) == 7
    assert "bye" in log.read_text()

    sleeper = start_process([sys.executable, "-c", "import time; time.sleep(600)"], log)
    time.sleep(0.5)
    os.kill(sleeper.pid, signal.SIGKILL)  # what a test that kills an engine does
    assert sleeper.wait(timeout=30) == -signal.SIGKILL
    _wait_for(lambda: not _group_members(sleeper.pid), 5, "the watchdog outlived its server")


def test_a_missing_executable_fails_at_start(tmp_path):
    with pytest.raises(FileNotFoundError, match="no-such-server"):
        start_process(["no-such-server", "--port", "1"], tmp_path / "server.log")
