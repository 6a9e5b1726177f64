"""The HTTP service on loopback: a real `mc-judge serve` process and real requests."""
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support import free_port

pytestmark = pytest.mark.distributed

_SCRIPT = Path(sys.executable).parent / "mc-judge"
MC_JUDGE = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "judge.cli"]
SUM = {"id": "sum", "kind": "stdio", "time_limit_s": 3.0,
       "tests": [{"input": "1 2\n", "output": "3\n"}, {"input": "2 2\n", "output": "4\n"}]}
CORRECT = "a, b = map(int, input().split())\nprint(a + b)\n"
LAST_CPU = max(os.sched_getaffinity(0))


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    problems = tmp_path_factory.mktemp("svc") / "problems.jsonl"
    problems.write_text(json.dumps(SUM) + "\n")
    port = free_port()
    proc = subprocess.Popen([*MC_JUDGE, "serve", "--port", str(port), "--workers", "1", "--max-queue", "1",
                             "--problems", str(problems), "--cpus", str(LAST_CPU)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if _get(url + "/health")[0] == 200:
                break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail(f"service did not start: {proc.stdout.read().decode()}")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def _get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.status, json.loads(r.read())


def _post(url, body):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_health(service):
    status, body = _get(service + "/health")
    assert status == 200 and body["status"] == "ok" and body["workers"] == 1 and body["capacity"] == 2
    assert body["cpus"] == [LAST_CPU]  # the one worker is pinned to the CPU --cpus gave


def test_judge_with_inline_problem_and_with_problem_id(service):
    status, body = _post(service + "/judge", {"problem": SUM, "code": CORRECT, "language": "python"})
    assert status == 200 and body["verdict"] == "AC" and body["passed"] == 2
    status, body = _post(service + "/judge", {"problem_id": "sum", "code": "print(3)\n", "all_tests": True})
    assert status == 200 and body["verdict"] == "WA" and [t["verdict"] for t in body["tests"]] == ["AC", "WA"]


@pytest.mark.parametrize("body, message", [
    (b"{nope", "not valid JSON"),
    ({"code": CORRECT}, "'problem'"),
    ({"problem_id": "other", "code": CORRECT}, "unknown problem"),
    ({"problem": {"id": "x", "kind": "stdio"}, "code": CORRECT}, "'tests'"),
    ({"problem": SUM, "code": 5}, "'code'"),
    ({"problem": SUM, "code": CORRECT, "language": "perl"}, "unknown language"),
])
def test_bad_requests_get_400_with_the_reason(service, body, message):
    status, answer = _post(service + "/judge", body)
    assert status == 400 and message in answer["error"]


def test_full_queue_answers_503_and_the_service_recovers(service):
    sleeper = {"problem": SUM, "code": "import time\ntime.sleep(1.5)\nprint(3)\n"}
    with ThreadPoolExecutor(4) as executor:
        slow = [executor.submit(_post, service + "/judge", sleeper) for _ in range(2)]
        deadline = time.monotonic() + 30
        while _get(service + "/health")[1]["in_flight"] < 2:  # one running, one queued: capacity 2
            assert time.monotonic() < deadline, "the two slow submissions never got in flight"
            time.sleep(0.05)
        status, body = _post(service + "/judge", {"problem": SUM, "code": CORRECT})
        assert status == 503 and "queue full" in body["error"]
        assert [f.result()[0] for f in slow] == [200, 200]
    status, body = _post(service + "/judge", {"problem": SUM, "code": CORRECT})
    assert status == 200 and body["verdict"] == "AC"
