"""Every data-parallel rank runs the same number of micro-batches (issue 10, finding 8): with shards that
pack into different numbers of micro-batches, or an empty shard, an expert-parallel MoE over two
data-parallel ranks neither hangs in its all-to-alls nor drifts from one rank's result; two data-parallel
ranks train on a mini-batch smaller than the data-parallel size; the interleaved pipeline runs a
micro-batch count that is not a multiple of pp. Each layout does the same calls as one rank and must
give the same log-probs, loss and gradient norm."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

from megatron_mc.trainer.batch import TrainBatch
from megatron_mc.trainer.group import TrainGroup
from megatron_mc.trainer.results import merge_logprobs, merge_train_metrics
from rollout.waits import get_within

from scenarios import TEMPERATURE, run_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "model"))
from model_tiny import make_hf_model  # noqa: E402
from rollout.local_ray import init_local_ray

pytestmark = [pytest.mark.distributed, pytest.mark.slow]

# A hang in a collective is what this guards against: fail in a minute instead of gloo's 30.
CALL_TIMEOUT_S = 60
# micro_batch_tokens=24 and three sequences of 20 tokens: one per micro-batch; over two data-parallel ranks
# the balanced plan gives one rank two sequences and the other one, so that one runs a padding micro-batch.
UNEQUAL = ((4, 16), (6, 14), (8, 12))
SINGLE = ((3, 4),)  # fewer sequences than data-parallel ranks: rank 1's shard is empty
THREE_MICRO_BATCHES = ((4, 10), (6, 9), (7, 7))  # one rank packs 3: not a multiple of pp=2


def _batch(shape: tuple[tuple[int, int], ...], seed: int) -> TrainBatch:
    gen = torch.Generator().manual_seed(seed)
    prompts = [torch.randint(5, 240, (p,), generator=gen).tolist() for p, _ in shape]
    responses = [torch.randint(5, 240, (r,), generator=gen).tolist() for _, r in shape]
    advantages = [(-1.0) ** i for i in range(len(shape))]
    return TrainBatch(prompts, responses, advantages=advantages, rollout_logprobs=None, temperature=TEMPERATURE)


def _config(**parallel):
    cfg = run_config(lr=1e-3, **parallel)
    cfg.train.mini_batch_size = cfg.train.train_batch_size  # one optimizer step over the whole batch
    return cfg


def _on_every_rank(group: TrainGroup, method: str, *args) -> list:
    return get_within([actor.call.remote(method, *args) for actor in group.actors], CALL_TIMEOUT_S,
                      [f"train rank {rank}" for rank in range(len(group.actors))],
                      f"{method} (a rank waiting here is stuck in a collective the others never join)")


def _measure(hf_dir: Path, train_shape, **parallel) -> dict:
    """Log-probs of a one-sequence batch and of `train_shape`, a train step on `train_shape` (old
    log-probs from the policy) and one on the one-sequence batch; the micro-batches each rank ran."""
    import ray

    group = TrainGroup(_config(**parallel), str(hf_dir))
    try:
        single, batch = _batch(SINGLE, seed=1), _batch(train_shape, seed=2)
        result = {"logprobs_single": merge_logprobs(_on_every_rank(group, "compute_logprobs", single), 1)}
        batch.old_logprobs = merge_logprobs(_on_every_rank(group, "compute_logprobs", batch), len(batch))
        result["logprobs"] = batch.old_logprobs
        per_rank = _on_every_rank(group, "train", batch)
        single.old_logprobs = result["logprobs_single"]
        result["step_single"] = merge_train_metrics(_on_every_rank(group, "train", single))
        result["step"] = merge_train_metrics(per_rank)
        result["micro_batches"] = [rank["steps"][0]["micro_batches"] for rank in per_rank]
        return result
    finally:
        for actor in group.actors:  # not shutdown(): after a hang the ranks would never answer it
            ray.kill(actor)


@pytest.fixture(scope="module")
def ray_cluster():
    os.environ["RAY_AUTH_MODE"] = "disabled"
    import ray

    init_local_ray(num_cpus=2)  # a cluster of its own
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    for family in ("qwen3", "qwen3_moe"):
        make_hf_model(family, str(root / family))
    return root


@pytest.fixture(scope="module")
def dense_one_rank(models, ray_cluster):
    return _measure(models / "qwen3", UNEQUAL)


def _max_diff(a: list[list[float]], b: list[list[float]]) -> float:
    return max((torch.tensor(x) - torch.tensor(y)).abs().max().item() for x, y in zip(a, b))


def _assert_same_as_one_rank(ours: dict, one_rank: dict) -> None:
    assert _max_diff(ours["logprobs_single"], one_rank["logprobs_single"]) < 1e-5
    assert _max_diff(ours["logprobs"], one_rank["logprobs"]) < 1e-5
    for step in ("step", "step_single"):
        for key in ("loss", "grad_norm", "tokens"):
            assert ours[step][key] == pytest.approx(one_rank[step][key], rel=1e-5, abs=1e-6), (step, key)


def test_data_parallel_ranks_pad_to_the_same_micro_batch_count(models, dense_one_rank):
    ours = _measure(models / "qwen3", UNEQUAL, world=2)
    assert dense_one_rank["micro_batches"] == [3]
    assert ours["micro_batches"] == [2, 2]  # one rank packed 1 and runs one padding micro-batch
    _assert_same_as_one_rank(ours, dense_one_rank)


def test_expert_parallel_moe_over_data_parallel_ranks_with_unequal_shards(models, ray_cluster):
    one_rank = _measure(models / "qwen3_moe", UNEQUAL)
    ours = _measure(models / "qwen3_moe", UNEQUAL, world=2, ep=2)
    assert ours["micro_batches"] == [2, 2]
    _assert_same_as_one_rank(ours, one_rank)


def test_interleaved_pipeline_rounds_the_micro_batch_count_up_to_a_multiple_of_pp(models, ray_cluster):
    one_rank = _measure(models / "qwen3", THREE_MICRO_BATCHES)
    ours = _measure(models / "qwen3", THREE_MICRO_BATCHES, world=2, pp=2, vpp=2)
    assert one_rank["micro_batches"] == [3] and ours["micro_batches"] == [4, 4]
    _assert_same_as_one_rank(ours, one_rank)
