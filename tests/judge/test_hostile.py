"""Adversarial submissions are contained with a non-AC verdict, leave no process behind, and the same
zygote keeps judging afterwards."""
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid

import psutil
import pytest

from judge.runner import judge_on
from judge.sandbox import NOBODY
from judge.verdict import Verdict
from judge.zygote import Zygote, ZygoteError
from judge_test_helpers import stdio_problem

pytestmark = pytest.mark.hostile

CORRECT = "a, b = map(int, input().split())\nprint(a + b)\n"


@pytest.fixture(scope="module", params=["C", "Python"])
def zygote(request):
    """A zygote on each path for its test children: C (judge/_fastchild.c) and Python (executor.Child)."""
    saved = os.environ.get("MC_JUDGE_FASTCHILD")
    os.environ["MC_JUDGE_FASTCHILD"] = "1" if request.param == "C" else "0"
    try:
        z = Zygote()
    finally:
        if saved is None:
            del os.environ["MC_JUDGE_FASTCHILD"]
        else:
            os.environ["MC_JUDGE_FASTCHILD"] = saved
    yield z
    z.close()


def judge(zygote, code, pairs=(("1 2\n", "3\n"),), time_limit_s=0.5):
    return judge_on(zygote, stdio_problem(list(pairs), time_limit_s=time_limit_s), code, "python")


def assert_contained(zygote, result):
    assert result.verdict is not Verdict.AC, result.to_dict()
    assert result.verdict is not Verdict.SE, result.to_dict()
    assert zygote.alive
    assert psutil.Process(zygote.info["pid"]).children(recursive=True) == []
    if os.geteuid() == 0:
        leftovers = [p.pid for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real == NOBODY
                     and not _under_another_judge(p, zygote.info["pid"])]
        assert leftovers == []


def _under_another_judge(process, our_zygote: int) -> bool:
    """A sandbox-user process some other judge on the machine is running (a test child or its compiler,
    under that judge's zygote): not one that escaped ours, which would be our zygote's or init's."""
    try:
        for parent in process.parents():
            if parent.pid != our_zygote and "from judge.zygote import serve" in " ".join(parent.cmdline()):
                return True
    except psutil.Error:
        return True  # gone meanwhile: it was a short-lived child, not a leftover
    return False


HOSTILE = {
    "fork_bomb": "import os\nwhile True:\n    os.fork()\n",
    "subprocess": "import subprocess\nprint(subprocess.check_output(['echo', '3']).decode().strip())\n",
    "multiprocessing": "import multiprocessing as mp\np = mp.Process(target=print, args=(3,))\np.start()\np.join()\n",
    "thread_bomb": "import threading, time\nwhile True:\n    threading.Thread(target=time.sleep, args=(100,), daemon=True).start()\n",
    "exec_shell": "import os\nos.execv('/bin/sh', ['sh', '-c', 'echo 3'])\n",
    "memory_bomb": "x = [0] * (10 ** 10)\n",
    "endless_output": "import os\nwhile True:\n    os.write(1, b'3' * 65536)\n",
    "sleep_forever": "import time\ntime.sleep(10 ** 6)\n",
    "ignore_signals_and_spin": (
        "import signal\nsignal.alarm(0)\n"
        "for s in (signal.SIGALRM, signal.SIGTERM, signal.SIGXCPU, signal.SIGINT, signal.SIGHUP):\n"
        "    signal.signal(s, signal.SIG_IGN)\nwhile True:\n    pass\n"
    ),
    "ignore_signals_and_sleep": (
        "import signal, time\nfor s in (signal.SIGALRM, signal.SIGTERM, signal.SIGINT):\n"
        "    signal.signal(s, signal.SIG_IGN)\ntime.sleep(10 ** 6)\n"
    ),
    "kill_parent": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nprint(3)\n",
    "kill_everything": "import os, signal\nos.kill(-1, signal.SIGKILL)\nprint(3)\n",
    "kill_parent_group": "import os, signal\nos.killpg(os.getpgid(os.getppid()), signal.SIGKILL)\nprint(3)\n",
    "kill_init": "import os, signal\nos.kill(1, signal.SIGTERM)\nprint(3)\n",
    "ptrace_parent": (
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "if libc.ptrace(16, os.getppid(), 0, 0) != 0:\n    raise OSError(ctypes.get_errno(), 'ptrace')\nprint(3)\n"
    ),
    "unix_socket": "import socket\nsocket.socket(socket.AF_UNIX).connect('/run/anything')\nprint(3)\n",
    "huge_file": "f = open('big', 'wb')\nwhile True:\n    f.write(b'0' * (1 << 20))\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_program_is_contained(zygote, name):
    assert_contained(zygote, judge(zygote, HOSTILE[name]))


def test_network_connection_is_refused_and_never_arrives(zygote):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(0.2)
        port = server.getsockname()[1]
        code = f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=2)\ns.sendall(b'hi')\nprint(3)\n"
        assert_contained(zygote, judge(zygote, code))
        with pytest.raises(socket.timeout):
            server.accept()


@pytest.mark.skipif(os.geteuid() != 0, reason="other users' files are only protected from a root judge")
def test_other_users_files_cannot_be_read(zygote):
    with open("/etc/shadow") as f:
        shadow = f.read()
    code = "import sys\nsys.stdout.write(open('/etc/shadow').read())\n"
    assert_contained(zygote, judge(zygote, code, [("\n", shadow)]))
    root_listing = " ".join(sorted(os.listdir("/root")))
    code = "import os\nprint(' '.join(sorted(os.listdir('/root'))))\n"
    assert_contained(zygote, judge(zygote, code, [("\n", root_listing + "\n")]))


def _needs_hidden_host_files(zygote):
    if not zygote.info["hidden"]:
        pytest.skip("the zygote could not make a private mount namespace (needs root with CAP_SYS_ADMIN)")


def test_writes_outside_the_private_dir_do_not_reach_the_host(zygote, tmp_path):
    _needs_hidden_host_files(zygote)
    token = uuid.uuid4().hex
    targets = [f"/tmp/escape-{token}", f"/var/tmp/escape-{token}", f"/dev/shm/escape-{token}"]
    code = "import sys\nfor path in " + repr(targets) + ":\n    open(path, 'w').write('x')\nprint(3)\n"
    assert_contained(zygote, judge(zygote, code))
    assert not any(os.path.exists(p) for p in targets)
    assert_contained(zygote, judge(zygote, "open('../escape', 'w').write('x')\nprint(3)\n"))


# Looks for a file holding this test's input and prints the answer stored next to it.
DISK_SEARCH = """
import json, os, sys
marker, *roots = sys.stdin.read().split()
for root in roots:
    for folder, _, files in os.walk(root):
        for name in files:
            try:
                text = open(os.path.join(folder, name)).read(1 << 20)
                if marker in text:
                    for test in json.loads(text)['tests']:
                        if marker in test['input']:
                            print(test['output'])
                            raise SystemExit(0)
            except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
                pass
print('not found')
"""


def test_searching_the_disk_for_the_expected_output_fails(zygote):
    _needs_hidden_host_files(zygote)
    marker, secret = f"input-{uuid.uuid4().hex}", f"answer-{uuid.uuid4().hex}"
    folder = f"/tmp/mc-judge-test-{uuid.uuid4().hex}"
    os.mkdir(folder, 0o755)
    path = os.path.join(folder, "problem.json")
    try:
        with open(path, "w") as f:
            json.dump({"id": "leak", "kind": "stdio", "tests": [{"input": marker, "output": secret}]}, f)
        os.chmod(path, 0o644)
        # The search does work outside the sandbox, so a non-AC verdict below is the sandbox's doing.
        outside = subprocess.run([sys.executable, "-c", DISK_SEARCH], input=f"{marker} {folder}",
                                 capture_output=True, text=True, timeout=60)
        assert outside.stdout.strip() == secret
        everywhere = " ".join([marker, folder, "/tmp", "/var/tmp", "/dev/shm", "/home", "/run", "/srv", "/mnt"])
        assert_contained(zygote, judge(zygote, DISK_SEARCH, [(everywhere + "\n", secret + "\n")], time_limit_s=5))
    finally:
        os.remove(path)
        os.rmdir(folder)


# Reads the memory of the process that holds the problem (the judging process) for the answer.
PROC_SEARCH = """
import os, re, sys
pid, secret_prefix = sys.stdin.read().split()
found = 'not found'
for candidate in [pid] + [p for p in os.listdir('/proc') if p.isdigit()]:
    try:
        for attr in ('cmdline', 'environ'):
            data = open(f'/proc/{candidate}/{attr}', 'rb').read()
            if secret_prefix.encode() in data:
                found = 'leak'
        with open(f'/proc/{candidate}/maps') as maps, open(f'/proc/{candidate}/mem', 'rb') as mem:
            for line in maps:
                start, end = (int(x, 16) for x in line.split()[0].split('-'))
                if 'r' not in line.split()[1] or end - start > 1 << 28:
                    continue
                try:
                    mem.seek(start)
                    chunk = mem.read(end - start)
                except OSError:
                    continue
                hit = re.search(re.escape(secret_prefix.encode()) + rb'[0-9a-f]{32}', chunk)
                if hit:
                    print(hit.group().decode())
                    raise SystemExit(0)
    except OSError:
        pass
print(found)
"""


def test_reading_the_judges_memory_through_proc_fails(zygote):
    secret = f"answer-{uuid.uuid4().hex}"
    pid = os.getpid()
    stdin = f"{pid} answer-"
    result = judge(zygote, PROC_SEARCH, [(stdin + "\n", secret + "\n")], time_limit_s=5)
    assert_contained(zygote, result)


# Walks the interpreter's objects and frames for anything that looks like the expected answer.
INTROSPECTION = """
import gc, sys
prefix = 'answer-'
found = None
for obj in gc.get_objects():
    if isinstance(obj, dict):
        for value in list(obj.values()):
            if isinstance(value, (str, bytes)) and (prefix in value if isinstance(value, str) else prefix.encode() in value):
                found = value
frame = sys._getframe()
while frame is not None:
    for value in list(frame.f_locals.values()) + list(frame.f_globals.values()):
        if isinstance(value, str) and value.startswith(prefix) and len(value) > len(prefix) + 8:
            found = value
    frame = frame.f_back
print(found if isinstance(found, str) else (found.decode() if found else 'none'))
"""


def test_walking_the_stack_and_gc_for_the_expected_output_fails(zygote):
    secret = f"answer-{uuid.uuid4().hex}"
    assert_contained(zygote, judge(zygote, INTROSPECTION, [("\n", secret + "\n")], time_limit_s=5))


def test_a_dying_zygote_takes_its_running_child_with_it():
    doomed = Zygote()
    children = []

    def kill_zygote_once_the_child_runs():
        process = psutil.Process(doomed.info["pid"])
        sandbox_uid = NOBODY if os.geteuid() == 0 else os.getuid()
        deadline = time.monotonic() + 30
        try:
            while time.monotonic() < deadline and not children:
                for child in process.children():
                    try:
                        if child.status() == psutil.STATUS_SLEEPING and child.uids().real == sandbox_uid:
                            children.append(child)
                    except psutil.Error:
                        pass
                time.sleep(0.05)
        finally:
            process.kill()

    killer = threading.Thread(target=kill_zygote_once_the_child_runs)
    killer.start()
    with pytest.raises(ZygoteError):
        judge(doomed, "import time\ntime.sleep(600)\n", time_limit_s=300)
    killer.join()
    assert children, "the sleeping child was never seen"
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert alive == []
    doomed.close()


def test_the_same_zygote_still_judges_correctly_after_all_attacks(zygote):
    pid = zygote.info["pid"]
    result = judge(zygote, CORRECT, [("1 2\n", "3\n"), ("4 5\n", "9\n")])
    assert result.verdict is Verdict.AC
    assert zygote.info["pid"] == pid and zygote.alive
