"""mc-eval scales time limits as mc-train does: --time-limit-scale, else the --config's judge.time_limit_scale.
The problems mc-eval loads are judged on a real JudgePool with a solution that sleeps past the limit."""
import json

import pytest

from judge.pool import JudgePool
from judge.problem import Problem, TestCase
from megatron_mc.eval.cli import build_parser, eval_problems, judge_config, main, run_config

# Wall limit at scale 1: 2 * 0.2 + 1 = 1.4 s, under the 2 s sleep; at scale 20 it is 9 s.
SLEEPER = "import time\ntime.sleep(2.0)\nprint(int(input()) * 2)\n"
PROBLEM = Problem(id="slow", kind="stdio", tests=[TestCase("21\n", "42\n")], time_limit_s=0.2, memory_limit_mb=256)


@pytest.fixture(scope="module")
def pool():
    with JudgePool(1) as judge_pool:
        yield judge_pool


@pytest.fixture
def problems_file(tmp_path):
    path = tmp_path / "problems.jsonl"
    path.write_text(json.dumps(PROBLEM.to_dict()) + "\n")
    return path


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("judge:\n  time_limit_scale: 20\n  stop_at_first_failure: false\n")
    return path


def _verdict(pool, problems_file, *options: str) -> tuple[str, float]:
    args = build_parser().parse_args(["--model", "unused", "--problems", str(problems_file), *options])
    [problem] = eval_problems(args, judge_config(args, run_config(args)))
    return pool.judge(problem, SLEEPER).verdict.value, problem.time_limit_s


def test_sleeper_is_tle_at_scale_one_and_accepted_at_scale_twenty(pool, problems_file):
    assert _verdict(pool, problems_file) == ("TLE", pytest.approx(0.2))
    assert _verdict(pool, problems_file, "--time-limit-scale", "20") == ("AC", pytest.approx(4.0))


def test_config_scale_is_used_and_the_flag_overrides_it(pool, problems_file, config_file):
    assert _verdict(pool, problems_file, "--config", str(config_file)) == ("AC", pytest.approx(4.0))
    with_flag = _verdict(pool, problems_file, "--config", str(config_file), "--time-limit-scale", "1")
    assert with_flag == ("TLE", pytest.approx(0.2))


def test_config_judge_section_reaches_the_judge_settings(config_file):
    args = build_parser().parse_args(["--model", "m", "--problems", "p", "--config", str(config_file)])
    assert judge_config(args, run_config(args)).stop_at_first_failure is False


def test_a_non_positive_scale_is_refused_before_anything_starts(tmp_path, problems_file, capsys):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    assert main(["--model", str(model), "--problems", str(problems_file), "--time-limit-scale", "0"]) == 2
    assert "judge.time_limit_scale must be > 0" in capsys.readouterr().err
