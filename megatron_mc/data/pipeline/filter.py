"""The filter stage: quality rules, then difficulty (predict, calibrate, select).

Quality rules, each rejection with its reason:
  too_few_tests   fewer than `min_tests` tests;
  interactive     an interactive problem (metadata "validation" naming interactive, an "interactor", an
                  "interactive" flag or tag) that the judge cannot run: with `interactive: judgeable` (the
                  default) one whose problem carries an interactor (judge/interactive.py) is kept, with
                  `interactive: reject` none is.
Difficulty (filter.difficulty; see difficulty/):
  predict    each problem scored 1-10 on the dimensions by a judge LLM (llm_predictor: OpenAI-compatible
             chat endpoint, `llm.base_url`, else the run's engine) or by heuristics (heuristic_predictor);
             `predictor: auto` asks the LLM when there is an endpoint;
  calibrate  the reference policy's pass rates on anchor problems (pass_rates, through the run's engine and
             the judge) refit the weights and fit the map from weighted score to pass rate (calibrate);
             without an engine, or when the anchors tell too little (fewer than `min_each_side` solved by
             some sample, or failed by some), the report says why and problems are placed by rank (pass rate
             1 for the lowest weighted score, 0 for the highest) or, with `calibration.fallback:
             logistic_prior`, by a fixed logistic of the score;
  select     by that pass rate (select): too_easy, too_hard, over_quota, and never_solved for anchors no
             sample solved (only when calibrated: a measurement too weak to calibrate condemns nothing).
Every problem that passed the quality rules is written, scored, to <stage>/scored.jsonl (difficulty before
selection); kept ones carry the same annotations: difficulty_scores, weighted_score, predicted_pass_rate,
calibrated_pass_rate (when calibrated), measured_pass_rate (anchors), difficulty_bucket, difficulty_predictor.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from megatron_mc.data.pipeline.difficulty.calibrate import (
    FALLBACKS, METHODS, CalibrationSkipped, calibrate, prior_pass_rate, rank_pass_rate)
from megatron_mc.data.pipeline.difficulty.dimensions import DEFAULT_WEIGHTS, Dimensions
from megatron_mc.data.pipeline.difficulty.heuristic_predictor import predict_heuristic, tags_of
from megatron_mc.data.pipeline.difficulty.llm_predictor import LLMConfig, LLMPredictor, Prediction
from megatron_mc.data.pipeline.difficulty.pass_rates import PassRateConfig, choose_anchors, measure_pass_rates
from megatron_mc.data.pipeline.difficulty.select import SelectConfig, select
from megatron_mc.data.pipeline.jsonl import write_records
from megatron_mc.data.pipeline.record import ProblemRecord, Rejection, StageOutput

STAGE = "filter"
PREDICTORS = ("auto", "llm", "heuristic")
INTERACTIVE_POLICIES = ("judgeable", "reject")
SCORED_NAME = "scored.jsonl"
DIFFICULTY_ANNOTATIONS = ("difficulty_scores", "weighted_score", "predicted_pass_rate", "calibrated_pass_rate",
                          "measured_pass_rate", "difficulty_bucket", "difficulty_predictor")
UNPARSABLE_IN_REPORT = 50  # examples in the manifest; every one is in the checkpoint


@dataclass
class CalibrationConfig:
    enabled: bool = True              # needs an engine (the run's); skipped with the reason otherwise
    method: str = "logistic"          # "logistic" | "isotonic"
    refit_weights: bool = True
    fallback: str = "rank"            # map when uncalibrated: "rank" (place by rank) | "logistic_prior"
    min_each_side: int = 3            # anchors solved by some sample, and failed by some, needed to calibrate

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"filter.difficulty.calibration.method: must be one of {METHODS}, got {self.method!r}")
        if self.fallback not in FALLBACKS:
            raise ValueError(f"filter.difficulty.calibration.fallback: must be one of {FALLBACKS}, "
                             f"got {self.fallback!r}")


@dataclass
class DifficultyConfig:
    enabled: bool = True
    predictor: str = "auto"
    dimensions: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    llm: LLMConfig = field(default_factory=LLMConfig)
    pass_rates: PassRateConfig = field(default_factory=PassRateConfig)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    select: SelectConfig = field(default_factory=SelectConfig)

    def __post_init__(self) -> None:
        if self.predictor not in PREDICTORS:
            raise ValueError(f"filter.difficulty.predictor: must be one of {PREDICTORS}, got {self.predictor!r}")
        Dimensions.from_weights(self.dimensions)


@dataclass
class FilterConfig:
    min_tests: int = 3
    interactive: str = "judgeable"    # "judgeable" | "reject"
    difficulty: DifficultyConfig = field(default_factory=DifficultyConfig)

    def __post_init__(self) -> None:
        if self.min_tests < 1:
            raise ValueError(f"filter.min_tests: must be >= 1, got {self.min_tests}")
        if self.interactive not in INTERACTIVE_POLICIES:
            raise ValueError(f"filter.interactive: must be one of {INTERACTIVE_POLICIES}, got {self.interactive!r}")


def run_filter(records: list[ProblemRecord], cfg: FilterConfig, ctx) -> StageOutput:
    kept, rejected = [], []
    for record in records:
        reason = quality_rejection(record, cfg)
        if reason is None:
            kept.append(record)
        else:
            rejected.append(Rejection(record.id, STAGE, *reason))
    report = {"quality": {"in": len(records), "kept": len(kept)}}
    (ctx.out_dir / SCORED_NAME).unlink(missing_ok=True)   # another run's scores are not this run's "before"
    if cfg.difficulty.enabled and kept:
        kept, dropped, report["difficulty"] = run_difficulty(kept, cfg.difficulty, ctx)
        rejected += dropped
    return StageOutput(kept, rejected, report)


def quality_rejection(record: ProblemRecord, cfg: FilterConfig) -> tuple[str, str] | None:
    """(reason, detail) when a quality rule rejects the problem."""
    tests = len(record.problem.tests)
    if tests < cfg.min_tests:
        return "too_few_tests", f"{tests} test{'' if tests == 1 else 's'}, min_tests is {cfg.min_tests}"
    why = interactive_evidence(record)
    if why is None:
        return None
    if cfg.interactive == "reject":
        return "interactive", f"{why}; filter.interactive is 'reject'"
    if getattr(record.problem, "interactor", None) is None:
        return "interactive", f"{why}, but the problem carries no interactor for the judge to run"
    return None


def interactive_evidence(record: ProblemRecord) -> str | None:
    if getattr(record.problem, "interactor", None) is not None:
        return "the problem has an interactor"
    for where, meta in (("metadata", record.problem.metadata), ("annotations", record.annotations)):
        if "interactive" in str(meta.get("validation") or "").lower().split():
            return f"{where}.validation is {meta['validation']!r}"
        if meta.get("interactor"):
            return f"{where} names an interactor"
        if meta.get("interactive") is True:
            return f"{where}.interactive is true"
    if "interactive" in tags_of(record):
        return "tagged interactive"
    return None


def run_difficulty(records: list[ProblemRecord], cfg: DifficultyConfig, ctx
                   ) -> tuple[list[ProblemRecord], list[Rejection], dict]:
    dimensions = Dimensions.from_weights(cfg.dimensions)
    predictions, report = predict(records, cfg, dimensions, ctx)
    scores = np.array([dimensions.vector(predictions[r.id].scores) for r in records])
    prior = np.array(dimensions.weights)
    measured, calibration, report["calibration"] = _calibrate(records, scores, prior, cfg, ctx)
    weights = prior if calibration is None else calibration.weights
    weighted = scores @ weights
    if calibration is not None:
        rates, report["pass_rate_map"] = calibration.pass_rate(weighted), f"calibrated ({calibration.method})"
    else:
        fallback = cfg.calibration.fallback
        rates = rank_pass_rate(weighted) if fallback == "rank" else prior_pass_rate(weighted)
        report["pass_rate_map"] = f"uncalibrated ({fallback})"
    pass_rates = {r.id: float(p) for r, p in zip(records, rates)}
    records = [_annotated(r, predictions[r.id], float(score), pass_rates[r.id], calibration is not None,
                          measured.get(r.id), cfg.select) for r, score in zip(records, weighted)]
    write_records(ctx.out_dir / SCORED_NAME, records)
    # An uncalibrated measurement (too little signal) does not condemn the problems the policy missed either.
    kept_ids, dropped, report["select"] = select(pass_rates, measured if calibration else {}, cfg.select)
    if measured and calibration is None and cfg.select.drop_unsolved:
        report["select"]["unsolved_rule"] = "skipped: the measurement did not calibrate (see calibration.status)"
    kept_set = set(kept_ids)
    report["weights"] = {n: round(float(w), 4) for n, w in zip(dimensions.names, weights)}
    report["scored_file"] = SCORED_NAME
    return ([r for r in records if r.id in kept_set],
            [Rejection(d.id, STAGE, d.reason, d.detail) for d in dropped], report)


def _annotated(record: ProblemRecord, prediction: Prediction, weighted: float, pass_rate: float, calibrated: bool,
               measured: dict | None, select_cfg) -> ProblemRecord:
    """A copy of `record` carrying this stage's difficulty annotations (replacing any an earlier run left)."""
    annotations = {k: v for k, v in record.annotations.items() if k not in DIFFICULTY_ANNOTATIONS}
    annotations.update({"difficulty_scores": prediction.scores, "weighted_score": round(weighted, 4),
                        "predicted_pass_rate": round(pass_rate, 4), "difficulty_bucket": select_cfg.bucket(pass_rate),
                        "difficulty_predictor": prediction.predictor})
    if calibrated:
        annotations["calibrated_pass_rate"] = round(pass_rate, 4)
    if measured is not None:
        annotations["measured_pass_rate"] = measured["pass_rate"]
    return dataclasses.replace(record, annotations=annotations)


def predict(records: list[ProblemRecord], cfg: DifficultyConfig, dimensions: Dimensions, ctx
            ) -> tuple[dict[str, Prediction], dict]:
    base_url = None
    if cfg.predictor != "heuristic":
        base_url = cfg.llm.base_url or ctx.engine_url
        if base_url is None and cfg.predictor == "llm":
            raise ValueError("filter.difficulty.predictor is 'llm' but there is no endpoint: set "
                             "filter.difficulty.llm.base_url (or run with an engine)")
    if base_url is None:
        predictions = {r.id: Prediction(predict_heuristic(r, dimensions), "heuristic") for r in records}
        return predictions, {"predictor": "heuristic", "problems": len(records)}
    predictor = LLMPredictor(cfg.llm, base_url, dimensions)
    ctx.log(f"filter: difficulty from the LLM at {predictor.url}, {cfg.llm.samples} answers per problem")
    predictions = predictor.predict_all(records, ctx.checkpoint("llm_predictions"), ctx.progress)
    unparsable = [{"id": i, **u} for i, p in predictions.items() for u in p.unparsable]
    counts = {kind: sum(p.predictor == kind for p in predictions.values()) for kind in ("llm", "heuristic_fallback")}
    return predictions, {
        "predictor": "llm", "endpoint": predictor.url, "samples_per_problem": cfg.llm.samples, "problems": counts,
        "retries": predictor.retries, "unparsable_answers": len(unparsable),
        "unparsable_examples": unparsable[:UNPARSABLE_IN_REPORT],
        "unparsable_record": "every unparsable answer, per problem: llm_predictions.checkpoint.jsonl"}


def _calibrate(records: list[ProblemRecord], scores: np.ndarray, prior: np.ndarray, cfg: DifficultyConfig, ctx
               ) -> tuple[dict[str, dict], object, dict]:
    """(measured anchors, Calibration or None, report)."""
    if not cfg.calibration.enabled:
        return {}, None, {"status": "off"}
    engine_url = ctx.engine_url
    if engine_url is None:
        return {}, None, {"status": "skipped: no engine to sample the reference policy from"}
    weighted = {r.id: float(s) for r, s in zip(records, scores @ prior)}
    anchors = choose_anchors(records, weighted, cfg.pass_rates.anchors)
    ctx.log(f"filter: measuring pass rates on {len(anchors)} anchors, {cfg.pass_rates.samples} samples each")
    measured = measure_pass_rates(anchors, cfg.pass_rates, engine_url, ctx.judge_pool(),
                                  ctx.checkpoint("pass_rates"), ctx.progress)
    index = {r.id: k for k, r in enumerate(records)}
    rows = [index[a.id] for a in anchors]
    rates = np.array([measured[a.id]["pass_rate"] for a in anchors])
    report = {"anchors": len(anchors), "samples_per_anchor": cfg.pass_rates.samples,
              "anchors_solved": int(sum(measured[a.id]["solved"] > 0 for a in anchors)),
              "mean_pass_rate": round(float(rates.mean()), 4)}
    try:
        calibration = calibrate(scores[rows], rates, cfg.pass_rates.samples, prior, cfg.calibration.method,
                                cfg.calibration.refit_weights, cfg.calibration.min_each_side)
    except CalibrationSkipped as e:
        return measured, None, {**report, "status": f"skipped: {e}"}
    names = tuple(Dimensions.from_weights(cfg.dimensions).names)
    return measured, calibration, {**report, "status": "calibrated", **calibration.report(names)}
