"""Calibration: from predicted dimension scores to the pass rates a reference policy reaches.

On the anchors (problems whose pass rate was measured), the dimension weights are refit to the measured
pass rates: a pass rate p is turned into a difficulty target logit(1 - p) (p clipped away from 0 and 1 by
half a sample), and non-negative least squares on the centred scores (scipy.optimize.nnls) finds the
weights that explain it best; normalised to sum 1 they keep the weighted score on the 1-10 scale. Then a
monotone map from the weighted score to a pass rate is fit (scikit-learn: isotonic regression, decreasing,
or a logistic regression on the individual samples). The rank agreement between weighted score and
measured fail rate (Spearman; 1 is perfect) is reported with the prior and the refit weights.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls
from scipy.stats import rankdata, spearmanr
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

METHODS = ("isotonic", "logistic")


class CalibrationSkipped(ValueError):
    """The anchors cannot calibrate anything (too few, or every pass rate the same); the message says why."""


@dataclass
class Calibration:
    weights: np.ndarray               # refit dimension weights, non-negative, summing to 1
    method: str
    spearman_before: float | None     # Spearman(weighted score, 1 - pass rate) with the prior weights
    spearman_after: float | None      # the same with the refit weights
    anchors: int
    model: object

    def pass_rate(self, weighted_scores: np.ndarray) -> np.ndarray:
        scores = np.asarray(weighted_scores, dtype=float)
        if self.method == "isotonic":
            return np.clip(self.model.predict(scores), 0.0, 1.0)
        return self.model.predict_proba(scores.reshape(-1, 1))[:, 1]

    def report(self, names: tuple[str, ...]) -> dict:
        return {"method": self.method, "anchors": self.anchors,
                "weights": {n: round(float(w), 4) for n, w in zip(names, self.weights)},
                "spearman_before": _rounded(self.spearman_before), "spearman_after": _rounded(self.spearman_after)}


def refit_weights(scores: np.ndarray, pass_rates: np.ndarray, samples: np.ndarray | int) -> np.ndarray | None:
    """Non-negative weights summing to 1 that best explain logit(1 - pass rate) linearly; None when no
    non-negative combination explains any of it."""
    half_sample = 0.5 / np.asarray(samples, dtype=float)
    p = np.clip(pass_rates, half_sample, 1 - half_sample)
    target = np.log((1 - p) / p)
    centred = scores - scores.mean(axis=0)
    coefficients, _ = nnls(centred, target - target.mean())
    total = coefficients.sum()
    return coefficients / total if total > 0 else None


def rank_agreement(weighted_scores: np.ndarray, pass_rates: np.ndarray) -> float | None:
    """Spearman correlation of difficulty score and fail rate; None when either is constant."""
    if np.ptp(weighted_scores) == 0 or np.ptp(pass_rates) == 0:
        return None
    return float(spearmanr(weighted_scores, 1 - pass_rates).statistic)


def calibrate(scores: np.ndarray, pass_rates: np.ndarray, samples: np.ndarray | int, prior_weights: np.ndarray,
              method: str = "logistic", refit: bool = True, min_each_side: int = 3) -> Calibration:
    """`scores`: anchors x dimensions (1-10); `pass_rates`: measured on `samples` responses each. At least
    `min_each_side` anchors must be solved by some sample and as many failed by some: fewer tell too little
    (one lucky sample would set every weight)."""
    if method not in METHODS:
        raise ValueError(f"filter.difficulty.calibration.method: must be one of {METHODS}, got {method!r}")
    scores = np.asarray(scores, dtype=float)
    pass_rates = np.asarray(pass_rates, dtype=float)
    if len(pass_rates) < 3:
        raise CalibrationSkipped(f"{len(pass_rates)} anchors measured; calibration needs at least 3")
    if np.ptp(pass_rates) == 0:
        raise CalibrationSkipped(f"every anchor has pass rate {pass_rates[0]:.2f}: the reference policy separates "
                                 "none of them, so there is nothing to calibrate against")
    solved, failed = int(np.sum(pass_rates > 0)), int(np.sum(pass_rates < 1))
    if min(solved, failed) < min_each_side:
        raise CalibrationSkipped(f"{solved} anchors solved by some sample and {failed} failed by some; calibration "
                                 f"needs at least {min_each_side} of each (calibration.min_each_side)")
    prior = np.asarray(prior_weights, dtype=float)
    weights = (refit_weights(scores, pass_rates, samples) if refit else None)
    weights = prior if weights is None else weights
    weighted = scores @ weights
    model = _fit_map(weighted, pass_rates, np.broadcast_to(np.asarray(samples), pass_rates.shape), method)
    return Calibration(weights, method, rank_agreement(scores @ prior, pass_rates), rank_agreement(weighted, pass_rates),
                       len(pass_rates), model)


def _fit_map(weighted: np.ndarray, pass_rates: np.ndarray, samples: np.ndarray, method: str):
    if method == "isotonic":
        return IsotonicRegression(increasing=False, y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(
            weighted, pass_rates, sample_weight=samples)
    # Each anchor counts as its samples: `solved` successes and `samples - solved` failures.
    solved = np.rint(pass_rates * samples)
    x = np.concatenate([weighted, weighted]).reshape(-1, 1)
    y = np.concatenate([np.ones_like(weighted), np.zeros_like(weighted)])
    counts = np.concatenate([solved, samples - solved])
    keep = counts > 0
    return LogisticRegression(C=1e4).fit(x[keep], y[keep], sample_weight=counts[keep])


def _rounded(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(value, 4)


FALLBACKS = ("rank", "logistic_prior")
PRIOR_CENTRE, PRIOR_SLOPE = 5.5, 1.0


def rank_pass_rate(weighted_scores: np.ndarray) -> np.ndarray:
    """The default map without calibration: absolute pass rates are unknown, so a problem is placed by its rank
    in this set: 1 for the lowest weighted score, 0 for the highest, ties sharing their mean rank."""
    scores = np.asarray(weighted_scores, dtype=float)
    if len(scores) < 2:
        return np.full(len(scores), 0.5)
    return 1 - (rankdata(scores) - 1) / (len(scores) - 1)


def prior_pass_rate(weighted_scores: np.ndarray) -> np.ndarray:
    """The other map without calibration: a logistic centred on the middle of the 1-10 scale (score 5.5 passes
    half the time; about 4.65 and below is easy at 0.7, 6.35 and above hard at 0.3)."""
    return 1 / (1 + np.exp(PRIOR_SLOPE * (np.asarray(weighted_scores, dtype=float) - PRIOR_CENTRE)))
