"""MoE diagnostics (trainer/moe_diagnostics.py) on Megatron-Core's own router and through the real TrainWorker
on gloo ranks: counts add up to tokens x topk, EP=2 counts equal the single rank's, the entropy is the hand
computation from the router logits, a router forced onto one expert shows it, capacity drops are counted,
the aux loss is Megatron-Core's tracked value, dense models report nothing, and routing agreement with the
engine counts whole top-k sets over the positions the engine routed.

This file is also the worker script: `python test_moe_diagnostics.py SCENARIO OUT_DIR` (RANK, WORLD_SIZE,
MASTER_ADDR, MASTER_PORT set), since Megatron-Core's CPU layer never runs inside the pytest process.
"""
from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "model")]

pytestmark = [pytest.mark.distributed]
# prompt and response lengths
SHAPES = ((5, 12), (9, 3), (3, 20), (7, 6))
TOKENS = sum(p + r for p, r in SHAPES)
EXPERTS, TOPK = 4, 2  # the tiny Qwen3-MoE (model_tiny.py)


def batch():
    from megatron_mc.trainer.batch import TrainBatch

    gen = torch.Generator().manual_seed(0)
    prompts = [torch.randint(5, 240, (p,), generator=gen).tolist() for p, _ in SHAPES]
    responses = [torch.randint(5, 240, (r,), generator=gen).tolist() for _, r in SHAPES]
    rollout = [(-torch.rand(r, generator=gen) * 3).tolist() for _, r in SHAPES]
    old = [[v + 0.05 * (i % 3 - 1) for i, v in enumerate(row)] for row in rollout]
    return TrainBatch(prompts, responses, advantages=[1.0, -0.5, 0.8, -1.2], rollout_logprobs=rollout,
                      temperature=0.7, old_logprobs=old)


def train_step(hf_dir: Path, world: int = 1, diagnostics: bool = True, steps: int = 1, recompute: str = "none",
               **layout) -> list[dict]:
    """The "moe" part of each of `steps` RL steps of a TrainWorker: one optimizer step over one micro-batch
    per data-parallel rank."""
    from scenarios import run_config

    from megatron_mc.parallel import state
    from megatron_mc.trainer.worker import TrainWorker

    cfg = run_config(lr=1e-3, world=world, **layout)
    cfg.train.train_batch_size = cfg.train.mini_batch_size = 2
    cfg.train.micro_batch_tokens = 256
    cfg.train.moe_diagnostics = diagnostics
    cfg.model.recompute = recompute
    worker = TrainWorker(cfg, str(hf_dir))
    try:
        return [worker.train(batch())["moe"] for _ in range(steps)]
    finally:
        state.destroy(keep_process_group=True)


def router_checks() -> dict:
    """Megatron-Core's TopKRouter on one rank, driven by hand."""
    from megatron.core.transformer.moe.moe_utils import get_default_pg_collection
    from megatron.core.transformer.moe.router import TopKRouter
    from megatron.core.transformer.transformer_config import TransformerConfig

    from megatron_mc.models.layer_spec import _define_missing_te_gemm
    from megatron_mc.trainer.moe_diagnostics import MoEDiagnostics

    _define_missing_te_gemm()

    def router(topk, capacity=None):
        config = TransformerConfig(num_layers=2, hidden_size=8, num_attention_heads=1, num_moe_experts=6,
                                   moe_router_topk=topk, moe_router_pre_softmax=topk == 1,  # required at topk 1
                                   moe_expert_capacity_factor=capacity,
                                   moe_router_load_balancing_type="none", moe_token_dispatcher_type="alltoall",
                                   add_bias_linear=False, use_cpu_initialization=True)
        r = TopKRouter(config, pg_collection=get_default_pg_collection())
        r.set_layer_number(2)
        return r.train()

    torch.manual_seed(0)
    out = {}
    r = router(topk=2)
    hidden = torch.randn(5, 3, 8, requires_grad=True)
    diagnostics = MoEDiagnostics([r])
    with diagnostics.recording():
        r(hidden)
        r(hidden[:2])
    metrics = diagnostics.read()
    with torch.no_grad():
        logits = torch.cat([hidden.reshape(-1, 8), hidden[:2].reshape(-1, 8)]) @ r.weight.t()
        p = torch.softmax(logits, -1)
        out["router/entropy_hand"] = float(-(p * p.log()).sum(-1).mean())
        picked = torch.bincount(logits.topk(2, -1).indices.flatten(), minlength=6)
    out["router/counts_hand"] = picked.tolist()
    out["router/metrics"] = metrics
    # recorded again only inside recording(), and from zero
    r(hidden)
    with diagnostics.recording():
        r(hidden[:1])
    out["router/again"] = diagnostics.read()

    forced = router(topk=1)
    with torch.no_grad():
        forced.weight.zero_()
        forced.weight[3] = 20.0
    positive = torch.rand(4, 2, 8, requires_grad=True) + 0.5
    diagnostics = MoEDiagnostics([forced])
    with diagnostics.recording():
        forced(positive)
    out["router/forced"] = diagnostics.read()

    capped = router(topk=1, capacity=1.0)
    capped.weight.data.copy_(forced.weight.data)
    diagnostics = MoEDiagnostics([capped])
    with diagnostics.recording():
        capped(positive)
    out["router/capped"] = diagnostics.read()
    return out


def scenario_single(out: Path) -> dict:
    from model_tiny import make_hf_model

    from megatron_mc.parallel import state
    from megatron_mc.parallel.config import ParallelConfig

    make_hf_model("qwen3_moe", str(out / "moe"))
    make_hf_model("qwen3_moe", str(out / "moe_aux"), output_router_logits=True, router_aux_loss_coef=0.01)
    make_hf_model("qwen3", str(out / "dense"))
    result = {"steps": train_step(out / "moe", steps=2), "aux": train_step(out / "moe_aux")[0],
              "recompute": train_step(out / "moe_aux", recompute="full")[0],
              "off": train_step(out / "moe", diagnostics=False)[0], "dense": train_step(out / "dense")[0]}
    state.initialize(ParallelConfig())
    try:
        result.update(router_checks())
    finally:
        state.destroy(keep_process_group=True)
    return result


def scenario_two_ranks(out: Path) -> dict:
    from model_tiny import make_hf_model

    rank = int(os.environ["RANK"])
    make_hf_model("qwen3_moe", str(out / f"moe-r{rank}"))
    return {f"ep2/r{rank}": train_step(out / f"moe-r{rank}", world=2, ep=2)[0],
            f"pp2/r{rank}": train_step(out / f"moe-r{rank}", world=2, pp=2)[0],
            f"cp2/r{rank}": train_step(out / f"moe-r{rank}", world=2, cp=2)[0],
            f"tp2_sp/r{rank}": train_step(out / f"moe-r{rank}", world=2, tp=2, sequence_parallel=True)[0]}


# ---- the tests ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def single(tmp_path_factory):
    from model_workers import launch

    return launch("single", 1, tmp_path_factory.mktemp("moe_single"), script=Path(__file__))


def _layer_counts(metrics: dict) -> list[list[int]]:
    return metrics["moe/expert_tokens"]


def test_counts_add_up_to_tokens_times_topk_in_a_real_step(single):
    first, second = single["steps"]
    assert first["moe/tokens"] == TOKENS  # packed, no padding: every token routed once per layer
    counts = _layer_counts(first)
    assert len(counts) == 4 and all(len(layer) == EXPERTS for layer in counts)
    assert all(sum(layer) == TOKENS * TOPK for layer in counts)
    for i, layer in enumerate(counts):
        ratio = first[f"moe/layer{i}/load_max_over_mean"]
        assert ratio == pytest.approx(max(layer) / (sum(layer) / EXPERTS))
        assert 1.0 <= ratio <= EXPERTS / TOPK
        assert 0.0 < first[f"moe/layer{i}/router_entropy"] <= math.log(EXPERTS)
        assert first[f"moe/layer{i}/dropped_token_fraction"] == 0.0
    assert first["moe/dropped_token_fraction"] == 0.0
    assert first["moe/router_entropy"] == pytest.approx(
        sum(first[f"moe/layer{i}/router_entropy"] for i in range(4)) / 4)
    assert 0.5 < first["moe/aux_loss"] < EXPERTS  # 1 when balanced
    # the second step starts from zero (same tokens, moved weights)
    assert second["moe/tokens"] == TOKENS and all(sum(layer) == TOKENS * TOPK for layer in _layer_counts(second))


def test_aux_loss_is_megatron_cores_tracked_value(single):
    """With output_router_logits the router applies the aux loss and Megatron-Core tracks it; same seed, same
    weights: over one micro-batch its value is the Switch formula the untracked model reports."""
    tracked, computed = single["aux"]["moe/aux_loss"], single["steps"][0]["moe/aux_loss"]
    assert tracked == pytest.approx(computed, rel=1e-5)
    assert single["aux"]["moe/expert_tokens"] == single["steps"][0]["moe/expert_tokens"]


def test_full_recompute_counts_each_micro_batch_once(single):
    """The recomputed forward (in the backward) routes again; the first, gradient-free pass is not counted,
    in our accumulators as in Megatron-Core's tracker."""
    recomputed, plain = single["recompute"], single["aux"]
    assert recomputed["moe/expert_tokens"] == plain["moe/expert_tokens"]
    assert recomputed["moe/tokens"] == TOKENS
    assert recomputed["moe/aux_loss"] == pytest.approx(plain["moe/aux_loss"], rel=1e-6)
    assert recomputed["moe/router_entropy"] == pytest.approx(plain["moe/router_entropy"], rel=1e-6)


def test_switched_off_and_dense_report_nothing(single):
    assert single["off"] == {}
    assert single["dense"] == {}


def test_entropy_and_counts_equal_the_hand_computation(single):
    metrics = single["router/metrics"]
    assert metrics["moe/router_entropy"] == pytest.approx(single["router/entropy_hand"], rel=1e-6)
    assert metrics["moe/layer1/router_entropy"] == metrics["moe/router_entropy"]
    assert metrics["moe/expert_tokens"] == [[int(c) for c in single["router/counts_hand"]]]
    assert metrics["moe/tokens"] == 21
    again = single["router/again"]  # outside recording() nothing counts; read() restarts from zero
    assert again["moe/tokens"] == 3 and sum(again["moe/expert_tokens"][0]) == 6


def test_a_router_forced_onto_one_expert(single):
    forced = single["router/forced"]
    assert forced["moe/load_max_over_mean"] == pytest.approx(6.0)  # num_experts, topk 1
    assert forced["moe/expert_tokens"] == [[0, 0, 0, 8, 0, 0]]
    assert forced["moe/router_entropy"] < 1e-3
    assert forced["moe/dropped_token_fraction"] == 0.0


def test_capacity_drops_are_counted(single):
    capped = single["router/capped"]
    capacity = math.ceil(8 / 6 * 1.0)  # Megatron-Core's get_capacity(tokens * topk, experts, factor)
    assert capped["moe/expert_tokens"] == [[0, 0, 0, capacity, 0, 0]]
    assert capped["moe/dropped_token_fraction"] == pytest.approx((8 - capacity) / 8)
    assert capped["moe/layer1/dropped_token_fraction"] == capped["moe/dropped_token_fraction"]


def test_metrics_reach_the_jsonl_sink_and_mc_plot_draws_them(single, tmp_path):
    from megatron_mc.metrics.plot import main
    from megatron_mc.metrics.sinks import JsonlSink, read_metrics
    from megatron_mc.trainer.moe_diagnostics import merge_moe_metrics

    sink = JsonlSink(tmp_path, None)
    for step, moe in enumerate(single["steps"], 1):  # as TrainGroup merges the ranks' results
        sink.write(step, {"train/loss": 0.1, **merge_moe_metrics([{"records": [], "steps": [], "moe": moe}])})
    sink.close()
    rows = read_metrics(tmp_path)
    assert rows[1]["moe/expert_tokens"] == single["steps"][1]["moe/expert_tokens"]
    assert main([str(tmp_path)]) == 0
    drawn = {p.name for p in (tmp_path / "plots").iterdir()}
    assert {"moe_load.png", "moe_router.png", "moe_expert_load.png"} <= drawn
    assert (tmp_path / "plots" / "moe_expert_load.png").read_bytes()[:4] == b"\x89PNG"


def test_routing_agreement_counts_whole_sets_and_leaves_out_unrouted_positions():
    """The trainer's routing map against the engine's experts (E 4, top-2): the same set in another order
    agrees; one shared expert, or a capacity-dropped one, does not; a position the engine did not route
    counts nowhere. (The 2-rank comparison with the routers' own top-k is in test_routing_replay.py.)"""
    from megatron_mc.trainer.moe_diagnostics import agreement_counts
    from megatron_mc.trainer.routing_replay import NOT_ROUTED

    used = torch.tensor([[1, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 1], [0, 0, 1, 1]], dtype=torch.bool)
    engine = torch.tensor([[1, 0], [0, 3], [3, 1], [NOT_ROUTED, NOT_ROUTED]], dtype=torch.int32)
    assert agreement_counts(used, engine, 2).tolist() == [3.0, 1.0, (2 + 1 + 1) / 2]
    with pytest.raises(RuntimeError, match="another token order than the router's"):
        agreement_counts(used, engine[:3], 2)


@pytest.mark.slow
def test_ep2_and_pp2_counts_equal_the_single_rank_counts(single, tmp_path):
    """EP=2 over two data-parallel ranks (each routes its own share of the batch) and PP=2 (each stage
    holds two of the layers): after the reduction every rank reports the single rank's figures; CP=2 and
    TP=2 (sequence parallel) ranks agree and count every routed position once."""
    from model_workers import launch

    measured = launch("two_ranks", 2, tmp_path, script=Path(__file__))
    one = single["steps"][0]
    for key in (f"{layout}/r{rank}" for layout in ("ep2", "pp2") for rank in range(2)):
        metrics = measured[key]
        assert metrics["moe/expert_tokens"] == one["moe/expert_tokens"]
        assert metrics["moe/tokens"] == TOKENS
        assert metrics["moe/router_entropy"] == pytest.approx(one["moe/router_entropy"], rel=1e-5)
        assert metrics["moe/aux_loss"] == pytest.approx(one["moe/aux_loss"], rel=1e-5)
    # CP=2: each rank routes its zig-zag half (sequences padded to a multiple of 2 * cp); TP=2 with
    # sequence parallelism: each rank routes its half of the row (padded to a multiple of tp). Padding
    # positions are routed, and counted, too.
    for layout in ("cp2", "tp2_sp"):
        first, second = (measured[f"{layout}/r{rank}"] for rank in range(2))
        assert first == second, layout
        assert TOKENS <= first["moe/tokens"] < TOKENS + 4 * len(SHAPES), layout
        assert all(sum(layer) == first["moe/tokens"] * TOPK for layer in first["moe/expert_tokens"]), layout


if __name__ == "__main__":
    out_dir = Path(sys.argv[2])
    measured = {"single": scenario_single, "two_ranks": scenario_two_ranks}[sys.argv[1]](out_dir)
    (out_dir / f"result-{os.environ.get('RANK', '0')}.json").write_text(json.dumps(measured))
