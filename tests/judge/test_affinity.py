"""Workers pinned to CPUs (judge/affinity.py): the choice parsed and checked, and the zygotes and their test
children really running where their worker was put; through the pool, the CLI, the service and the config."""
import json
import os

import pytest

from judge import JudgePool, Verdict
from judge.affinity import check_cpu_choice, cpu_for, parse_cpu_list, worker_cpus
from judge.cli import main as judge_cli
from judge.zygote import Zygote
from judge_test_helpers import stdio_problem
from megatron_mc.config import JudgeConfig
from megatron_mc.data.pipeline.config import config_from_dict as pipeline_config
from megatron_mc.eval.cli import build_parser as eval_parser
from megatron_mc.eval.cli import judge_config as eval_judge_config

ALLOWED = sorted(os.sched_getaffinity(0))
# The submission prints the CPUs it may run on, as the kernel says (a system call the sandbox lets through).
PRINTS_ITS_CPUS = "import os\nprint(sorted(os.sched_getaffinity(0)))\n"


def prints(cpus) -> object:
    return stdio_problem([("", f"{sorted(cpus)}\n")])


def test_cpu_lists_parse_as_taskset_takes_them():
    assert parse_cpu_list("0-3,8") == [0, 1, 2, 3, 8]
    assert parse_cpu_list(" 5 , 2,2") == [2, 5]
    for bad in ("a-b", "3-1", "1,,2", "-1"):
        with pytest.raises(ValueError, match="CPU list|bad range"):
            parse_cpu_list(bad)
    with pytest.raises(ValueError, match="CPU 99999999999 in '0-99999999999': CPU numbers go up to 8191"):
        parse_cpu_list("0-99999999999")  # refused before a range of that size is built


def test_lists_of_numbers_and_things_that_are_not():
    assert check_cpu_choice(c for c in [3, 1]) == [1, 3]  # any iterable, read once
    for bad in (3, b"0-1", [0, "1"], [True], [-1], [8192]):
        with pytest.raises(ValueError, match="judge.cpus: "):
            check_cpu_choice(bad, "judge.cpus")


def test_worker_i_gets_the_ith_cpu_round_robin():
    assert [cpu_for(i, [4, 6, 7]) for i in range(7)] == [4, 6, 7, 4, 6, 7, 4]
    assert cpu_for(3, None) is None


def test_the_choice_auto_none_a_list_and_cpus_this_process_may_not_use():
    assert worker_cpus("auto", len(ALLOWED)) == ALLOWED
    assert worker_cpus(None, 4) is None and worker_cpus("none", 4) is None
    assert worker_cpus([ALLOWED[-1], ALLOWED[0], ALLOWED[0]], 1) == sorted({ALLOWED[0], ALLOWED[-1]})
    assert worker_cpus(str(ALLOWED[0]), 3) == [ALLOWED[0]]
    outside = max(ALLOWED) + 1
    with pytest.raises(ValueError, match=rf"\[{outside}\] are not among the CPUs"):
        worker_cpus(f"{ALLOWED[0]},{outside}", 1)
    with pytest.raises(ValueError, match="no CPU given"):
        worker_cpus([], 1)
    with pytest.raises(ValueError, match="judge.cpus: 'x' is not a CPU list"):
        check_cpu_choice("x", "judge.cpus")


@pytest.mark.skipif(len(ALLOWED) < 2, reason="needs two CPUs: with one, any pool covers them all")
def test_auto_leaves_a_pool_with_fewer_workers_than_cpus_unpinned():
    """Pools side by side (in Ray actors, say) would otherwise all crowd onto the first CPUs."""
    assert worker_cpus("auto", len(ALLOWED) - 1) is None
    with JudgePool(workers=len(ALLOWED) - 1) as pool:
        assert pool.cpus is None
        assert pool.judge(prints(ALLOWED), PRINTS_ITS_CPUS).verdict is Verdict.AC


def test_a_worker_its_zygote_and_its_test_children_run_on_its_cpu():
    cpu = ALLOWED[-1]
    with JudgePool(workers=1, cpus=[cpu]) as pool:
        result = pool.judge(prints([cpu]), PRINTS_ITS_CPUS)
        assert result.verdict is Verdict.AC, result
        [zygote] = pool.zygote_pids
        assert os.sched_getaffinity(zygote) == {cpu}
    assert os.sched_getaffinity(0) == set(ALLOWED)  # the judging process itself is left where it was


def test_by_default_a_pool_with_a_worker_per_cpu_puts_worker_i_on_the_ith_round_robin():
    workers = len(ALLOWED) + 1
    with JudgePool(workers=workers) as pool:
        assert pool.cpus == ALLOWED
        # every worker judges one of these (a worker takes the next submission once it has judged one)
        pool.judge_many([(prints(ALLOWED), "print('x')\n", "python")] * (4 * workers))
        placed = {index: os.sched_getaffinity(z.info["pid"]) for (index, _), z in pool._zygotes.items()}
    assert placed and all(cpus == {ALLOWED[index % len(ALLOWED)]} for index, cpus in placed.items()), placed


def test_a_submission_cannot_leave_its_cpu():
    cpu = ALLOWED[-1]
    widens = ("import os\ntry:\n    os.sched_setaffinity(0, set(range(os.cpu_count())))\n"
              "except PermissionError:\n    print('refused')\nprint(sorted(os.sched_getaffinity(0)))\n")
    with JudgePool(workers=1, cpus=[cpu]) as pool:
        result = pool.judge(stdio_problem([("", f"refused\n[{cpu}]\n")]), widens)
    assert result.verdict is Verdict.AC, result


def test_a_zygote_whose_cpu_is_gone_runs_unpinned_and_says_so(capfd):
    """The pool checked its CPUs when it was made; one taken offline since must not stop judging."""
    gone = max(ALLOWED) + 1
    zygote = Zygote("lean", cpu=gone)
    try:
        assert os.sched_getaffinity(zygote.info["pid"]) == set(ALLOWED)
    finally:
        zygote.close()
    assert f"cannot run on CPU {gone}" in capfd.readouterr().err


def test_not_pinned_children_may_run_on_every_allowed_cpu():
    with JudgePool(workers=len(ALLOWED), cpus=None) as pool:
        assert pool.cpus is None
        assert pool.judge(prints(ALLOWED), PRINTS_ITS_CPUS).verdict is Verdict.AC


def test_the_cli_pins_and_refuses_cpus_it_may_not_use(tmp_path, capsys):
    problem = tmp_path / "p.json"
    problem.write_text(json.dumps({"id": "cpus", "kind": "stdio", "time_limit_s": 2, "memory_limit_mb": 256,
                                   "tests": [{"input": "", "output": f"[{ALLOWED[0]}]\n"}]}))
    code = tmp_path / "a.py"
    code.write_text(PRINTS_ITS_CPUS)
    assert judge_cli(["run", "--problem", str(problem), "--code", str(code), "--cpus", str(ALLOWED[0])]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "AC"
    outside = max(ALLOWED) + 1
    assert judge_cli(["run", "--problem", str(problem), "--code", str(code), "--cpus", str(outside)]) == 2
    assert f"--cpus: [{outside}] are not among the CPUs" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        judge_cli(["run", "--problem", str(problem), "--code", str(code), "--cpus", "first"])
    assert "--cpus: 'first' is not a CPU list" in capsys.readouterr().err


def test_mc_data_and_mc_eval_take_the_choice():
    assert pipeline_config({"cpus": "0-1"}).cpus == "0-1" and pipeline_config({"cpus": None}).cpus is None
    with pytest.raises(Exception, match="cpus: 'x' is not a CPU list"):
        pipeline_config({"cpus": "x"})
    args = eval_parser().parse_args(["--model", "m", "--problems", "p.jsonl", "--judge-cpus", "none"])
    assert eval_judge_config(args, None).cpus == "none"
    args = eval_parser().parse_args(["--model", "m", "--problems", "p.jsonl"])
    assert eval_judge_config(args, None).cpus == "auto"


def test_the_training_config_checks_judge_cpus():
    assert JudgeConfig().cpus == "auto" and JudgeConfig(cpus=None).cpus is None
    assert JudgeConfig(cpus="96-127").cpus == "96-127"  # its form only: the node that runs it decides the rest
    with pytest.raises(ValueError, match="judge.cpus: 'cores' is not a CPU list"):
        JudgeConfig(cpus="cores")
