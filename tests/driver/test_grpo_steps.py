"""Two GRPO steps of the tiny default on the real stack (Ray, embedded engine, judge, Megatron on CPU),
with TP=1 (two data-parallel ranks) and, with the KL term on (reference log-probs each step), TP=2 train actors."""
import pytest

from megatron_mc.run_state import complete_checkpoints, latest_hf_export
from tests.driver.tiny_run import STEPS, metrics_rows, run_mc_train

pytestmark = [pytest.mark.slow, pytest.mark.distributed]

PER_STEP_METRICS = ("time/rollout", "time/train", "time/weight_sync", "rollout/temperature", "rollout/distinct_n",
                    "rollout/truncation_ratio", "rollout/response_len_mean", "algo/truncation_masked_fraction",
                    "train/entropy", "train/clipfrac_high", "train/logprob_diff_mean")


def test_two_grpo_steps_tp1(uninterrupted_run):
    check_two_steps(uninterrupted_run.run_dir, uninterrupted_run.result, keep_last=3)


def test_two_grpo_steps_tp2_with_kl(tmp_path):
    run_dir = tmp_path / "run"
    check_two_steps(run_dir, run_mc_train(run_dir, STEPS, "parallel.tp=2", "algo.kl_coef=0.05"), keep_last=2)
    rows = metrics_rows(run_dir)[1:]
    assert all("time/ref_logprobs" in row and row["train/kl_loss"] >= 0.0 for row in rows)
    assert rows[1]["train/kl_loss"] > 0.0  # step 2's policy is no longer the reference


def check_two_steps(run_dir, result, keep_last: int) -> None:
    assert result.returncode == 0, result.stderr[-4000:]

    rows = metrics_rows(run_dir)
    assert [r["step"] for r in rows] == [0, 1, 2]
    assert "eval/pass@1" in rows[0] and "eval/pass@1" in rows[2]
    for row in rows[1:]:
        missing = [k for k in PER_STEP_METRICS if k not in row]
        assert not missing, missing
        assert row["train/optimizer_steps"] == 2  # train_batch_size 4 / mini_batch_size 2
        assert row["weights/version"] == row["step"]
        assert len(row["data/problem_ids"]) >= 4
        # the trainer scores the engine's tokens with the engine's weights: at step 2 this holds only if
        # step 1's weights reached the engine
        assert row["train/logprob_diff_mean"] < 1e-2, row["train/logprob_diff_mean"]
    assert rows[1]["data/problem_ids"] != rows[2]["data/problem_ids"]

    checkpoints = [p.name for p in complete_checkpoints(run_dir / "checkpoints")]
    assert checkpoints[-1] == "step_000002" and len(checkpoints) <= keep_last
    export = latest_hf_export(run_dir)
    assert export is not None and (export / "config.json").is_file()
    assert "held-out pass@1:" in result.stderr and "after step 2" in result.stderr
