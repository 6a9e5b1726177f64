"""Packed sequences (THD segments, attention within each) give what right-padded rows give: the same
log-probs, the same RL step (loss, metrics, gradient norm) and the same policy after it, for a dense and
an MoE model under TP + SP + PP, CP + TP + SP, EP + PP + DP and CP + EP + DP with the distributed
optimizer. Four gloo ranks run the real TrainWorker (packing_workers.py)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from megatron_mc.trainer.results import merge_logprobs, merge_train_metrics

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "model"))
from model_workers import launch  # noqa: E402

from packing_workers import CASES, SHAPES  # noqa: E402

pytestmark = [pytest.mark.distributed, pytest.mark.slow]
WORLD = 4


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    return launch("packing", WORLD, tmp_path_factory.mktemp("packing"), timeout_s=900,
                  script=Path(__file__).resolve().parent / "packing_workers.py")


def _merged(measured, key):
    return merge_logprobs([{int(i): row for i, row in measured[f"{key}/r{r}"].items()} for r in range(WORLD)],
                          len(SHAPES))


def _max_diff(a, b) -> float:
    return max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb))


@pytest.mark.parametrize("case", [name for name, _, _ in CASES])
def test_packed_log_probs_and_rl_step_equal_the_padded_ones(measured, case):
    padded, packed = f"{case}/padded", f"{case}/packed"
    before = _merged(measured, f"{padded}/logprobs")
    assert [len(r) for r in before] == [r for _, r in SHAPES]
    assert _max_diff(_merged(measured, f"{packed}/logprobs"), before) < 1e-5

    steps = {mode: merge_train_metrics([measured[f"{case}/{mode}/train/r{r}"] for r in range(WORLD)])
             for mode in ("padded", "packed")}
    assert steps["packed"]["tokens"] == steps["padded"]["tokens"] == sum(r for _, r in SHAPES)
    for key, value in steps["padded"].items():
        if key.endswith(("_min", "_max")):  # per micro-batch extremes, averaged: they follow the grouping
            continue
        assert steps["packed"][key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
    assert steps["padded"]["grad_norm"] > 0

    after = _merged(measured, f"{padded}/after")
    assert _max_diff(after, before) > 1e-3  # the step moved the policy...
    assert _max_diff(_merged(measured, f"{packed}/after"), after) < 1e-4  # ...the same way
