"""Routing replay (R3) through the real trainer on two gloo ranks (routing_replay_workers.py), with the
embedded engine's samples of the tiny MoE (4 layers, 4 experts, top-2):
- every router of the trainer uses, token by token, the experts the engine recorded, under TP + sequence
  parallelism + EP with four sequences packed, and under CP + EP with padded rows after the trainer's router
  weights were perturbed (its own top-k then differs on many tokens, the used one on none);
- log-probs under replay equal the engine's (same weights, float32);
- under PP with two micro-batches in flight, a step that recomputes every layer in its backward routes
  each recomputation as that micro-batch's forward did (Megatron-Core's REPLAY_BACKWARD queue);
- a supervised step on the same trainer (no engine routes) routes by the trainer's own router;
- the MoE diagnostics' routing agreement of the old-log-prob forward: without replay and with perturbed
  routers, below 1 and equal, layer by layer, to the fraction counted from the recorded experts and the
  trainer's own top-k; under replay 1."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from megatron_mc.trainer.moe_diagnostics import merge_moe_metrics
from megatron_mc.trainer.results import merge_logprobs, merge_train_metrics

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "model"))
from model_workers import launch  # noqa: E402

from routing_replay_workers import NEW_TOKENS, ROUTE_CASES  # noqa: E402

pytestmark = [pytest.mark.distributed]
WORLD = 2


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    return launch("routing", WORLD, tmp_path_factory.mktemp("routing"), timeout_s=600,
                  script=Path(__file__).resolve().parent / "routing_replay_workers.py")


def _logprobs(measured, key, n):
    return merge_logprobs([{int(i): row for i, row in measured[f"{key}/r{r}"].items()} for r in range(WORLD)], n)


def _max_diff(a, b) -> float:
    return max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb))


@pytest.mark.parametrize("case", [name for name, *_ in ROUTE_CASES])
def test_routers_use_the_engines_experts_token_by_token(measured, case):
    samples = measured["samples"]
    routed = sum(len(s["prompt_ids"]) + len(s["response_ids"]) - 1 for s in samples)
    for rank in range(WORLD):
        routes = measured[f"{case}/routes/r{rank}"]
        assert routes["layers"] == [1, 2, 3, 4] and routes["tokens"] == 4 * routed  # each layer routed once
        assert routes["mismatched"] == 0
        if case.endswith("perturbed"):
            assert routes["own_differs"] > routed // 4  # replay, not the trainer's own router, chose them


@pytest.mark.parametrize("case", [name for name, *_ in ROUTE_CASES if not name.endswith("perturbed")] + ["pp2_recompute"])
def test_log_probs_under_replay_equal_the_engines(measured, case):
    engine = [s["rollout_logprobs"] for s in measured["samples"]]
    assert _max_diff(_logprobs(measured, f"{case}/logprobs", len(engine)), engine) < 2e-4


def test_recomputed_backward_replays_each_micro_batchs_routes(measured):
    same = {layer: ok for r in range(WORLD) for layer, ok in measured[f"pp2_recompute/same_routes/r{r}"].items()}
    assert same == {"1": True, "2": True, "3": True, "4": True}  # stage 0 holds layers 1-2, stage 1 layers 3-4
    step = merge_train_metrics([measured[f"pp2_recompute/train/r{r}"] for r in range(WORLD)])
    assert step["grad_norm"] > 0 and step["tokens"] == NEW_TOKENS * len(measured["samples"])
    supervised = merge_train_metrics([measured[f"pp2_recompute/sft/r{r}"] for r in range(WORLD)])
    assert supervised["grad_norm"] > 0 and supervised["tokens"] == NEW_TOKENS * len(measured["samples"])


def test_routing_agreement_without_replay_is_what_the_routers_own_top_k_gives(measured):
    counted = measured["agreement/r0"]["counted"]
    assert sorted(counted) == ["0", "1", "2", "3"]
    pairs = sum(c[0] for c in counted.values())
    assert pairs == 4 * sum(len(s["prompt_ids"]) + len(s["response_ids"]) - 1 for s in measured["samples"])
    for rank in range(WORLD):
        moe = measured[f"agreement/r{rank}"]["moe"]
        assert moe["moe/routing_agreement"] == pytest.approx(sum(c[1] for c in counted.values()) / pairs)
        assert moe["moe/routing_overlap"] == pytest.approx(sum(c[2] for c in counted.values()) / (2 * pairs))
        for layer, (n, same, _) in counted.items():
            assert moe[f"moe/layer{layer}/routing_agreement"] == pytest.approx(same / n)
    assert moe["moe/routing_agreement"] < 0.9 and moe["moe/routing_overlap"] > moe["moe/routing_agreement"]


def test_routing_agreement_under_replay_is_one(measured):
    replayed = merge_moe_metrics([measured[f"pp2_recompute/train/r{r}"] for r in range(WORLD)])
    assert replayed["moe/routing_agreement"] == 1.0 and replayed["moe/routing_overlap"] == 1.0
    assert [replayed[f"moe/layer{i}/routing_agreement"] for i in range(4)] == [1.0] * 4
