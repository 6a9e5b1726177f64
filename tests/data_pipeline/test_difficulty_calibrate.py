"""Calibration recovers the weights that made synthetic pass rates, and ranks problems better after it."""
from __future__ import annotations

import numpy as np
import pytest

from megatron_mc.data.pipeline.difficulty.calibrate import (
    CalibrationSkipped, calibrate, prior_pass_rate, rank_agreement, rank_pass_rate)

TRUE_WEIGHTS = np.array([0.5, 0.3, 0.2, 0.0, 0.0])
PRIOR = np.full(5, 0.2)
SAMPLES = 16


def synthetic(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores 1-10 per dimension; pass rate = logistic of the true weighted score, sampled SAMPLES times."""
    rng = np.random.default_rng(seed)
    scores = rng.uniform(1, 10, (count, 5))
    true_rate = 1 / (1 + np.exp(1.2 * (scores @ TRUE_WEIGHTS - 5.5)))
    return scores, rng.binomial(SAMPLES, true_rate) / SAMPLES


@pytest.mark.parametrize("method", ["logistic", "isotonic"])
def test_refit_recovers_known_weights_and_improves_rank_agreement(method):
    scores, rates = synthetic(300, seed=0)
    result = calibrate(scores, rates, SAMPLES, PRIOR, method)
    assert np.all(result.weights >= 0) and result.weights.sum() == pytest.approx(1.0)
    assert np.abs(result.weights - TRUE_WEIGHTS).max() < 0.06, result.weights
    assert result.spearman_after > result.spearman_before + 0.15
    assert result.spearman_after > 0.9
    held_out_scores, held_out_rates = synthetic(200, seed=1)
    predicted = result.pass_rate(held_out_scores @ result.weights)
    assert np.all((0 <= predicted) & (predicted <= 1))
    assert np.mean(np.abs(predicted - held_out_rates)) < 0.12
    assert rank_agreement(held_out_scores @ result.weights, held_out_rates) > \
        rank_agreement(held_out_scores @ PRIOR, held_out_rates)
    report = result.report(("a", "b", "c", "d", "e"))
    assert report["weights"]["a"] == pytest.approx(result.weights[0], abs=1e-4) and report["method"] == method


def test_without_refit_the_prior_weights_stay():
    scores, rates = synthetic(100, seed=2)
    result = calibrate(scores, rates, SAMPLES, PRIOR, "logistic", refit=False)
    assert np.array_equal(result.weights, PRIOR)
    assert result.spearman_after == result.spearman_before


def test_anchors_that_separate_nothing_skip_calibration_with_the_reason():
    scores, _ = synthetic(10, seed=3)
    with pytest.raises(CalibrationSkipped, match="every anchor has pass rate 0.00"):
        calibrate(scores, np.zeros(10), 4, PRIOR)
    with pytest.raises(CalibrationSkipped, match="at least 3"):
        calibrate(scores[:2], np.array([0.0, 1.0]), 4, PRIOR)
    with pytest.raises(ValueError, match="calibration.method"):
        calibrate(scores, np.linspace(0, 1, 10), 4, PRIOR, method="spline")


def test_prior_map_is_decreasing_through_one_half_at_the_middle():
    rates = prior_pass_rate(np.array([1.0, 5.5, 10.0]))
    assert rates[0] > 0.95 and rates[1] == pytest.approx(0.5) and rates[2] < 0.05


def test_rank_map_places_problems_by_rank_with_ties_shared():
    rates = rank_pass_rate(np.array([3.0, 1.0, 3.0, 9.0]))
    assert rates.tolist() == pytest.approx([0.5, 1.0, 0.5, 0.0])
    assert rank_pass_rate(np.array([4.0])).tolist() == [0.5]


def test_one_lucky_sample_is_too_little_to_calibrate():
    scores, _ = synthetic(30, seed=4)
    rates = np.zeros(30)
    rates[[3, 7]] = 0.25
    with pytest.raises(CalibrationSkipped, match="2 anchors solved by some sample and 30 failed by some"):
        calibrate(scores, rates, 4, PRIOR)
    rates[11] = 0.5
    assert calibrate(scores, rates, 4, PRIOR).anchors == 30
