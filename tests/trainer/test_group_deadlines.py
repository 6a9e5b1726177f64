"""TrainGroup's waits on a real Ray cluster of one simulated node (127.0.0.2, 2 GPUs declared as Ray
resources), without Megatron: a rank that cannot be scheduled, and a setup that does not finish in time,
raise DeadlineExceeded naming the ranks still pending with their bundle, node and GPU, and leave no train
actor behind; GPU ranks run with the environment Megatron and SGLang's weight-sync groups need."""
from __future__ import annotations

import os
import sys

import pytest
from ray import cloudpickle

from megatron_mc.config import config_from_dict
from megatron_mc.trainer.group import GPU_RANK_ENV, TrainActor, TrainGroup, rank_slots
from rollout.placement import make_placement
from rollout.waits import DeadlineExceeded, get_within
from tests.support import simulated_ray_nodes

pytestmark = pytest.mark.distributed

NODE = "127.0.0.2"
cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray workers cannot import this test module


@pytest.fixture(scope="module")
def cluster():
    with simulated_ray_nodes({"num_cpus": 2, "num_gpus": 2}) as nodes:  # at NODE
        yield nodes


@pytest.fixture
def placement(cluster):
    placement = make_placement("colocated", train_devices=2, rollout_devices=2, tp_size=1, use_gpu=True,
                               cpus_per_bundle=0.2, timeout_s=60)
    yield placement
    placement.remove()


def _two_ranks():
    return config_from_dict({"cluster": {"num_nodes": 1, "gpus_per_node": 2}})


def _holders(placement, share: float, ranks) -> list:
    """Actors holding `share` of the GPU of each train rank in `ranks`, once scheduled."""
    import ray

    actors = [ray.remote(TrainActor).options(num_cpus=0, num_gpus=share,
                                             scheduling_strategy=placement.train_strategy(r)).remote() for r in ranks]
    get_within([a.location.remote() for a in actors], 30, [f"holder on rank {r}" for r in ranks], "holders")
    return actors


def _kill(actors) -> None:
    import ray

    for actor in actors:
        ray.kill(actor)


def test_a_rank_that_cannot_be_scheduled_is_named_and_no_actor_is_left(placement):
    blocker = _holders(placement, 0.7, [1])  # 0.7 + the colocated train share 0.4 > 1 GPU
    try:
        with pytest.raises(DeadlineExceeded) as pending:
            TrainGroup(_two_ranks(), "/nowhere", placement=placement, start_timeout_s=5)
        message = str(pending.value)  # rank 0 too, when starting its worker process took longer (busy machine)
        assert "train ranks starting" in message and "of 2 still pending" in message
        bundle = placement.train_bundles[1]
        assert f"train rank 1 (bundle {bundle}, node {NODE}, GPU {placement.bundle_location(bundle).gpu})" in message
    finally:
        _kill(blocker)
    _kill(_holders(placement, 1.0, [0, 1]))  # whole GPUs fit only when the group killed its two actors


def test_setup_that_runs_out_names_every_rank(placement):
    """Setup imports Megatron-Core (seconds): a 0.5 s deadline runs out while both ranks are in it."""
    with pytest.raises(DeadlineExceeded) as pending:
        TrainGroup(_two_ranks(), "/nowhere", placement=placement, setup_timeout_s=0.5)
    message = str(pending.value)
    assert "train ranks setting up" in message and "2 of 2 still pending" in message
    assert placement.train_rank_name(0) in message and placement.train_rank_name(1) in message
    _kill(_holders(placement, 1.0, [0, 1]))


def _environment(names: list[str]) -> dict:
    import ray

    return {**{name: os.environ.get(name) for name in names}, "gpu_ids": [int(g) for g in ray.get_gpu_ids()]}


def test_gpu_ranks_run_with_megatron_and_nccl_settings(placement):
    import ray

    slots = rank_slots(2, gpus=True, placement=placement)
    assert [slot.options["num_gpus"] for slot in slots] == [0.4, 0.4]
    seen = ray.get([ray.remote(_environment).options(**slot.options).remote([*GPU_RANK_ENV, "CUDA_VISIBLE_DEVICES"])
                    for slot in slots])
    for rank, env in enumerate(seen):
        gpu = placement.bundle_location(placement.train_bundles[rank]).gpu
        assert env == {"CUDA_DEVICE_MAX_CONNECTIONS": "1", "NCCL_CUMEM_ENABLE": "0",
                       "CUDA_VISIBLE_DEVICES": str(gpu), "gpu_ids": [gpu]}
