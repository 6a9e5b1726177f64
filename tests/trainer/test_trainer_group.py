"""The Megatron train actors under Ray on CPU: log-probs equal an HF recomputation at the sampling
temperature under TP=1, TP=2 and CP=2; one RL step under TP=2, DP=2 and CP=2 (micro-batches, sequences and
loss scaling split across ranks) equals TP=1; the step moves positive-advantage log-probs up and lowers the loss;
a checkpoint reload continues with the same next step; SFT lowers its loss; disk, in-memory and gloo-group weight
updates make the embedded engine generate what the trained model generates; with the KL term on, the reference
log-probs stay those of the start weights through training and a reload, and leave the policy untouched; the
distributed optimizer's checkpoint resumes the same step in the group that saved it, in a new one, on fewer ranks
and, in the `full` format, under another layout."""
from __future__ import annotations

import os

import pytest
import torch

from megatron_mc.checkpoint.safetensors_dir import SafetensorsDir
from megatron_mc.data.tiny_default import prepare_tiny_default

from rollout.local_ray import init_local_ray
from scenarios import (fresh_resume_scenario, full_reshard_scenario, hf_logprobs, layout_scenario,
                       reference_scenario, rl_batch, run_config, single_rank_scenario)

pytestmark = [pytest.mark.distributed, pytest.mark.slow]

LAYOUTS = {"tp2": {"tp": 2, "world": 2}, "dp2": {"world": 2}, "cp2": {"cp": 2, "world": 2}}


@pytest.fixture(scope="module")
def hf_dir():
    return prepare_tiny_default().hf_dir


@pytest.fixture(scope="module")
def ray_cluster():
    os.environ["RAY_AUTH_MODE"] = "disabled"
    import ray

    init_local_ray(num_cpus=2)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def layouts(hf_dir, ray_cluster, single_rank, tmp_path_factory):
    from ray.util.placement_group import placement_group, remove_placement_group

    # TP=2 runs inside a placement group whose bundles hold less CPU than a rank asks for by default
    bundles = placement_group([{"CPU": 0.4}] * 2)
    try:
        measured = {name: layout_scenario(hf_dir, tmp_path_factory.mktemp(f"export-{name}"),
                                          placement_group=bundles if name == "tp2" else None, **dict(layout))
                    for name, layout in LAYOUTS.items()}
    finally:
        remove_placement_group(bundles)
    return {"tp1": single_rank["layout"], **measured}


@pytest.fixture(scope="module")
def single_rank(hf_dir, ray_cluster, tmp_path_factory):
    from rollout.config import RolloutConfig
    from rollout.launch_args import server_command
    from rollout.process import free_port, start_process, stop_process, wait_healthy

    out = tmp_path_factory.mktemp("single")
    engines = []

    def start_engine(model_dir):
        port = free_port()
        cfg = RolloutConfig(engine="embedded", dtype="float32")
        process = start_process(server_command(cfg, str(model_dir), "127.0.0.1", port), out / "engine.log")
        engines.append(process)
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, process, timeout_s=120, log_path=out / "engine.log")
        return url

    try:
        yield single_rank_scenario(hf_dir, out, start_engine)
    finally:
        for process in engines:
            stop_process(process)


def _max_diff(a: list[list[float]], b: list[list[float]]) -> float:
    return max((torch.tensor(x) - torch.tensor(y)).abs().max().item() for x, y in zip(a, b))


@pytest.mark.parametrize("layout", ["tp1", "tp2", "cp2"])
def test_logprobs_equal_hf_at_the_sampling_temperature(layouts, hf_dir, layout):
    reference = hf_logprobs(hf_dir, rl_batch())
    assert [len(r) for r in layouts[layout]["logprobs"]] == [len(r) for r in reference]
    assert _max_diff(layouts[layout]["logprobs"], reference) < 1e-4


@pytest.mark.parametrize("layout", ["tp2", "dp2", "cp2"])
def test_a_train_step_equals_tp1(layouts, layout):
    ours, tp1 = layouts[layout]["metrics"], layouts["tp1"]["metrics"]
    for key in ("loss", "pg_loss", "grad_norm", "approx_kl", "entropy", "clipfrac_high", "clipfrac_low"):
        assert ours[key] == pytest.approx(tp1[key], rel=1e-4, abs=1e-6), key
    assert ours["tokens"] == tp1["tokens"] == sum(len(r) for r in rl_batch().response_ids)
    assert ours["optimizer_steps"] == 2
    theirs, base = SafetensorsDir(str(layouts[layout]["export"])), SafetensorsDir(str(layouts["tp1"]["export"]))
    assert theirs.names() == base.names()
    start = SafetensorsDir(str(prepare_tiny_default().hf_dir))
    moved = max((base.get(n) - start.get(n)).abs().max().item() for n in base.names())
    assert moved > 1e-4  # the step changed the weights, so equal weights mean equal steps
    # Adam's first step moves a weight by lr * g / (|g| + eps): by about lr whatever g is, except where g is
    # near eps, and there the order in which a layout sums g shows. Another layout groups and reduces the
    # micro-batches differently, so allow a tenth of lr; a wrong gradient moves weights by up to 2 * lr.
    lr = run_config().train.lr
    assert max((theirs.get(n) - base.get(n)).abs().max().item() for n in base.names()) < 0.1 * lr


def test_a_train_step_raises_positive_advantage_logprobs_and_lowers_the_loss(single_rank):
    advantages = rl_batch().advantages
    before, after = single_rank["logprobs"]["before"], single_rank["logprobs"]["after"]
    for advantage, old, new in zip(advantages, before, after):
        change = sum(new) / len(new) - sum(old) / len(old)
        assert change * advantage > 0, (advantage, change)
    assert single_rank["loss"]["again"] < single_rank["loss"]["first"] - 1e-3


def _same_step(continued: dict, resumed: dict, rel: float) -> None:
    for key in ("loss", "grad_norm", "approx_kl", "lr"):
        assert resumed[key] == pytest.approx(continued[key], rel=rel, abs=1e-9), key


def test_reloaded_checkpoint_continues_with_the_same_step(single_rank):
    _same_step(single_rank["resume"]["continued"], single_rank["resume"]["resumed"], rel=1e-6)


def test_distributed_optimizer_checkpoint_continues_with_the_same_step(with_reference):
    _same_step(with_reference["resume"]["continued"], with_reference["resume"]["resumed"], rel=1e-6)


def test_distributed_optimizer_checkpoint_resumes_in_a_new_group_and_on_fewer_ranks(hf_dir, ray_cluster, tmp_path):
    measured = fresh_resume_scenario(hf_dir, tmp_path)
    _same_step(measured["continued"], measured["resumed"], rel=1e-6)
    _same_step(measured["continued"], measured["resumed_on_one_rank"], rel=1e-4)


def test_full_optimizer_checkpoint_resumes_under_another_layout(hf_dir, ray_cluster, tmp_path):
    measured = full_reshard_scenario(hf_dir, tmp_path)
    _same_step(measured["continued"], measured["resumed"], rel=1e-4)


def test_sft_lowers_the_loss(single_rank):
    losses = single_rank["sft_losses"]
    assert all(b < a for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < losses[0] - 0.5


def test_weight_updates_make_the_engine_generate_like_the_trained_model(single_rank):
    tokens, version = single_rank["greedy_before"]
    assert version == "0" and tokens == single_rank["greedy_hf_start"]
    tokens, version = single_rank["greedy_disk"]
    assert version == "1" and tokens == single_rank["greedy_hf_after_sft"]
    assert tokens != single_rank["greedy_hf_start"]
    tokens, version = single_rank["greedy_tensor"]
    assert version == "2" and tokens == single_rank["greedy_hf_after_more_sft"]
    tokens, version = single_rank["greedy_distributed"]
    assert version == "4" and tokens == single_rank["greedy_hf_after_distributed"]


@pytest.fixture(scope="module")
def with_reference(hf_dir, ray_cluster, tmp_path_factory):
    return reference_scenario(hf_dir, tmp_path_factory.mktemp("reference"))


def test_reference_logprobs_are_the_start_weights_and_leave_the_policy_untouched(with_reference):
    start = with_reference["start"]
    assert with_reference["ref_at_start"] == start
    assert _max_diff(with_reference["policy_before_ref"], start) > 1e-3  # training moved the policy
    assert with_reference["ref_after_step"] == start
    assert with_reference["policy_after_ref"] == with_reference["policy_before_ref"]
    assert with_reference["ref_after_reload"] == start


def test_the_kl_term_is_zero_at_the_start_and_grows_as_the_policy_moves(with_reference):
    first, second = with_reference["first_step"]["kl_loss"], with_reference["second_step"]["kl_loss"]
    assert 0.0 <= first < second
    assert second > 1e-5
