"""MetricsLogger: JSONL rows, TensorBoard events, resume truncation, timers, progress display, W&B error."""
import io
import json
import math
import sys
from types import SimpleNamespace

import pytest

from megatron_mc.metrics.logger import MetricsLogger
from megatron_mc.metrics.progress import ProgressDisplay
from megatron_mc.metrics.sinks import read_metrics, tensorboard_available
from megatron_mc.metrics.timers import PhaseTimers


def _cfg(**kw):
    base = dict(jsonl=True, tensorboard=False, wandb_project=None, wandb_entity=None, progress="off")
    return SimpleNamespace(**{**base, **kw})


def test_jsonl_rows_include_phase_times_and_survive_resume(tmp_path):
    with MetricsLogger(tmp_path, _cfg(), total_steps=5) as logger:
        for step in (1, 2, 3):
            with logger.timers.phase("rollout"):
                pass
            with logger.timers.phase("train"):
                pass
            logger.log_step(step, {"rollout/reward_mean": step / 10, "note": "text"})
            assert len(read_metrics(tmp_path)) == step  # flushed at once
    rows = read_metrics(tmp_path)
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert rows[0]["note"] == "text" and rows[2]["rollout/reward_mean"] == 0.3
    assert set(rows[0]) >= {"time/rollout", "time/train", "time/step", "time"}
    with (tmp_path / "metrics.jsonl").open("a") as f:
        f.write('{"step": 4, "rollout/rew')  # killed mid-write
    with MetricsLogger(tmp_path, _cfg(), total_steps=5, resume_step=2) as logger:
        logger.log_step(3, {"rollout/reward_mean": 0.9})
    assert [(r["step"], r["rollout/reward_mean"]) for r in read_metrics(tmp_path)] == [(1, 0.1), (2, 0.2), (3, 0.9)]


@pytest.mark.skipif(not tensorboard_available(), reason="tensorboard is not installed")
def test_tensorboard_events_are_written(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with MetricsLogger(tmp_path, _cfg(tensorboard=True), total_steps=2) as logger:
        logger.log_step(1, {"rollout/reward_mean": 0.25, "flag": True})
        logger.log_step(2, {"rollout/reward_mean": 0.5})
    acc = EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("rollout/reward_mean")] == [(1, 0.25), (2, 0.5)]
    assert "flag" not in acc.Tags()["scalars"]


def test_wandb_configured_but_missing_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # makes `import wandb` raise ImportError
    with pytest.raises(RuntimeError, match="pip install wandb.*unset logging.wandb_project"):
        MetricsLogger(tmp_path, _cfg(wandb_project="mc"), total_steps=1)


def test_phase_timers_accumulate_and_reset():
    now = [0.0]
    entered = []
    timers = PhaseTimers(on_enter=entered.append, clock=lambda: now[0])
    for name, cost in (("rollout", 2.0), ("judge", 0.5), ("rollout", 1.0)):
        with timers.phase(name):
            now[0] += cost
    assert timers.pop() == {"time/rollout": 3.0, "time/judge": 0.5, "time/step": 3.5}
    assert timers.pop() == {"time/step": 0.0}
    assert entered == ["rollout", "judge", "rollout"]


def test_plain_progress_prints_one_line_per_step_with_eta():
    now = [100.0]
    out = io.StringIO()
    display = ProgressDisplay(total_steps=10, start_step=4, mode="auto", stream=out, clock=lambda: now[0])
    assert display.mode == "plain"  # StringIO is not a TTY
    display.phase("rollout")
    now[0] += 60
    display.step_done(5, {"rollout/reward_mean": 0.5, "rollout/pass_rate": 0.25, "time/step": 60.0})
    now[0] += 60
    display.step_done(6, {"rollout/reward_mean": 0.625})
    lines = out.getvalue().splitlines()
    assert lines == ["step 5/10 | ETA 5m00s | reward 0.500 | pass 0.250 | 60.0s/step",
                     "step 6/10 | ETA 4m00s | reward 0.625"]


def test_live_progress_redraws_one_line():
    out = io.StringIO()
    display = ProgressDisplay(total_steps=2, mode="live", stream=out, clock=lambda: 0.0)
    display.phase("train")
    display.step_done(1, {})
    display.message("eval pass@1 0.5")
    text = out.getvalue()
    assert "\r\033[2Kstep 0/2 | [train] | ETA --" in text
    assert text.endswith("\r\033[2Keval pass@1 0.5\n") and text.count("\n") == 1
    assert math.isclose(display.eta_seconds(), 0.0)


def test_non_finite_values_are_written_as_null(tmp_path):
    with MetricsLogger(tmp_path, _cfg(), total_steps=1) as logger:
        logger.log_step(1, {"a": float("nan"), "b": float("inf"), "c": 1.5})
    text = (tmp_path / "metrics.jsonl").read_text()
    assert "NaN" not in text and "Infinity" not in text
    row = json.loads(text)
    assert (row["a"], row["b"], row["c"]) == (None, None, 1.5)
