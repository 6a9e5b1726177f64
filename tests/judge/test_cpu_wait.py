"""The wall-clock limit counts the time a program could run: the time its threads waited, runnable, for a CPU
that other work held moves the deadline (by up to the wall limit again), so a busy machine does not turn a
correct program into TLE; a program that sleeps still ends at the wall limit. On both child paths (C and
Python), with the zygote and its children on one CPU and a busy loop at nice -20 beside them there."""
import os
import subprocess
import sys
import time

import pytest

from judge.runner import judge_on
from judge.verdict import Verdict
from judge.zygote import Zygote
from judge_test_helpers import stdio_problem

CPU = min(os.sched_getaffinity(0))
# 40 ms of CPU time, then the sum: far under the 1 s CPU limit. At about 1% of a CPU it takes seconds.
WORKS_40MS = ("import time\nstart = time.process_time()\nwhile time.process_time() - start < 0.04:\n    pass\n"
              "a, b = map(int, input().split())\nprint(a + b)\n")
SLEEPS = "import time\ntime.sleep(30)\n"
ONE_TEST = [("1 2\n", "3\n")]


@pytest.fixture(params=["C", "Python"])
def zygote(request, monkeypatch):
    monkeypatch.setenv("MC_JUDGE_FASTCHILD", "1" if request.param == "C" else "0")
    made = Zygote(cpu=CPU)
    yield made
    made.close()


@pytest.fixture
def hog():
    """A busy loop at nice -20 on the zygote's CPU: a process at nice 0 there gets about 1% of that CPU. Each
    test child is a session of its own, so with autogroups (kernel.sched_autogroup_enabled) the loop's session
    gets the nice value too."""
    if os.geteuid() != 0:
        pytest.skip("a busy loop at nice -20 needs root")
    code = (f"import os\nos.sched_setaffinity(0, {{{CPU}}})\nos.setsid()\nos.setpriority(os.PRIO_PROCESS, 0, -20)\n"
            "try:\n    open('/proc/self/autogroup', 'w').write('-20')\nexcept OSError:\n    pass\n"
            "print('spinning', flush=True)\nwhile True:\n    pass\n")
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert process.stdout.readline() == b"spinning\n"
    yield process
    process.kill()
    process.wait()


def test_a_program_starved_of_cpu_by_other_work_is_not_tle(zygote, hog):
    problem = stdio_problem(ONE_TEST, time_limit_s=1.0)  # wall limit 3 s; moved by up to 3 s more
    result = judge_on(zygote, problem, WORKS_40MS, "python")
    assert result.verdict is Verdict.AC, result
    # it ran past the 3 s wall limit: the starvation this test is about did happen
    assert result.tests[0].time_s > 3.0, result


def test_a_sleeping_program_still_ends_at_the_wall_limit(zygote):
    problem = stdio_problem(ONE_TEST, time_limit_s=0.5)  # wall limit 2 s
    started = time.monotonic()
    result = judge_on(zygote, problem, SLEEPS, "python")
    assert result.verdict is Verdict.TLE
    assert 2.0 <= result.tests[0].time_s < 2.5 and time.monotonic() - started < 5.0, result
