"""The driver's small parts, without starting Ray: schedules, the problem stream, resume choice, the
summary line and the command line's early exits."""
import pytest

from judge.problem import Problem, TestCase
from megatron_mc.config import config_from_dict
from megatron_mc.data.sampler import ProblemSampler
from megatron_mc.driver.checkpointing import due
from megatron_mc.driver.cli import main
from megatron_mc.driver.problems import ProblemStream
from megatron_mc.driver.resume import checkpoint_to_resume
from megatron_mc.driver.run import summarize
from megatron_mc.run_state import ResumeError, RunState, begin_checkpoint, finish_checkpoint
from tests.driver.tiny_run import TINY_CONFIG


def _problems(n):
    return [Problem(id=f"p{i}", kind="stdio", tests=[TestCase("1\n", "1\n")]) for i in range(n)]


def test_due_every_interval_and_at_the_last_step():
    assert [s for s in range(1, 11) if due(s, 4, 10)] == [4, 8, 10]
    assert [s for s in range(1, 11) if due(s, 0, 10)] == [10]


def test_stream_state_after_draws_replays_the_rest():
    problems = _problems(7)
    stream = ProblemStream(problems, ProblemSampler(7, seed=3))
    first = [next(stream).id for _ in range(10)]  # crosses an epoch end
    assert stream.take_drawn() == first and stream.take_drawn() == []
    restored = ProblemSampler(7, seed=3)
    restored.load_state_dict(stream.sampler.state_dict())
    rest = [next(ProblemStream(problems, restored)).id for _ in range(4)]
    whole = ProblemStream(problems, ProblemSampler(7, seed=3))
    assert [next(whole).id for _ in range(14)] == first + rest
    assert sorted(first[:7]) == sorted(p.id for p in problems)


def test_resume_choice(tmp_path):
    cfg = config_from_dict({"run_dir": str(tmp_path / "run")})
    assert checkpoint_to_resume(cfg, None) is None and checkpoint_to_resume(cfg, "auto") is None
    for step in (2, 4):
        finish_checkpoint(begin_checkpoint(cfg.checkpoint_dir, step), RunState(step), keep_last=3)
    begin_checkpoint(cfg.checkpoint_dir, 6)  # a save killed half-way
    with pytest.raises(ResumeError, match="--resume auto"):
        checkpoint_to_resume(cfg, None)
    assert checkpoint_to_resume(cfg, "auto").name == "step_000004"
    with pytest.raises(ResumeError, match="incomplete"):
        checkpoint_to_resume(cfg, str(cfg.checkpoint_dir / "step_000006"))


def test_summary_names_before_and_after():
    history = [{"step": 0, "eval/pass@1": 0.125}, {"step": 1}, {"step": 2, "eval/pass@1": 0.5}]
    assert summarize(history) == "held-out pass@1: 12.5% before training -> 50.0% after step 2"
    assert summarize([{"step": 1}]) is None


def test_cli_dry_run_prints_the_plan(capsys):
    assert main(["--config", str(TINY_CONFIG), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "train parallel: tp=1" in out and "dp=2" in out


def test_cli_reports_a_bad_key(capsys):
    assert main(["--config", str(TINY_CONFIG), "--set", "train.lrr=1e-3"]) == 2
    assert "train.lr" in capsys.readouterr().err
