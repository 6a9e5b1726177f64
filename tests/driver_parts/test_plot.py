"""mc-plot draws the main curves of a run's metrics to PNG files."""
import json

from megatron_mc.metrics.plot import main, series


def _run_dir(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    # the names rollout's RolloutManager and algo's policy loss log
    rows = [{"step": s, "time": 0.0, "rollout/reward_mean": 0.1 * s, "rollout/pass_rate": 0.05 * s,
             "rollout/response_len_mean": 100 + s, "train/entropy": 1.0 / s, "train/clipfrac_high": 0.01,
             "rollout/temperature": 1.0 if s < 5 else 1.1, "train/masked_fraction": 0.02,
             "rollout/truncation_ratio": 0.1, "train/train_rollout_logprob_diff": 0.001,
             "rollout/distinct_n": 0.5, "time/rollout": 3.0}
            for s in range(1, 9)]
    rows.append({"step": 8, "rollout/reward_mean": 0.95})  # a step redone after a resume: last one wins
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run


def test_series_keeps_the_last_row_of_a_step(tmp_path):
    data = series([{"step": 1, "x": 1.0}, {"step": 2, "x": 2.0}, {"step": 2, "x": 3.0, "y": "s"}])
    assert data == {"x": ([1, 2], [1.0, 3.0])}


def test_mc_plot_writes_pngs(tmp_path, capsys):
    run = _run_dir(tmp_path)
    assert main([str(run)]) == 0
    names = sorted(p.name for p in (run / "plots").iterdir())
    assert names == sorted(f"{n}.png" for n in ("reward", "pass_rate", "response_length", "entropy",
                                                  "clip_fraction", "temperature", "masked_truncated",
                                                  "logprob_diff", "diversity", "step_time"))
    png = (run / "plots" / "reward.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert str(run / "plots" / "reward.png") in capsys.readouterr().out


def test_mc_plot_on_a_run_without_known_metrics(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "other": 1}\n')
    assert main([str(tmp_path)]) == 1
