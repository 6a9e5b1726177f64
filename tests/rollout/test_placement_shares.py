"""Placement on a real Ray cluster of two simulated nodes (127.0.0.2 and 127.0.0.3, 4 GPUs each, declared as
Ray resources): colocated engines and train ranks ask GPU shares that fit one bundle together, while the old
1 + 0.01 request stays pending and the deadline names the rank, bundle, node and GPU; bundles are looked up
and ordered by node and GPU id, each engine gets consecutive GPUs of one node or a clear refusal."""
from __future__ import annotations

import pytest

from megatron_mc.trainer.group import TrainActor, rank_slots, start_rank_actors
from rollout.placement import (ENGINE_GPU_SHARE, BundleLocation, by_node_and_gpu, engine_groups, make_placement,
                               train_gpu_share)
from rollout.waits import DeadlineExceeded, get_within

pytestmark = pytest.mark.distributed

NODES = ("127.0.0.2", "127.0.0.3")


@pytest.fixture(scope="module")
def cluster():
    import ray
    from ray.cluster_utils import Cluster

    nodes = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "num_gpus": 4, "node_ip_address": NODES[0], "include_dashboard": False})
    nodes.add_node(num_cpus=1, num_gpus=4, node_ip_address=NODES[1])
    ray.init(address=nodes.address, log_to_driver=False)
    yield nodes
    ray.shutdown()
    nodes.shutdown()


def _engine_like(placement, share: float) -> list:
    """Actors holding an engine's GPU share on each engine's bundle (TrainActor: importable, and its
    `location` answers once the actor is scheduled)."""
    import ray

    return [ray.remote(TrainActor).options(num_cpus=0, num_gpus=share, scheduling_strategy=placement.engine_strategy(i))
            .remote() for i in range(len(placement.engine_bundles))]


def _kill(actors) -> None:
    import ray

    for actor in actors:
        ray.kill(actor)


def test_shares_on_one_gpu_sum_to_at_most_one():
    assert ENGINE_GPU_SHARE + train_gpu_share("colocated") <= 1
    assert train_gpu_share("disaggregated") == 1.0
    with pytest.raises(ValueError, match="colocated' or 'disaggregated'"):
        train_gpu_share("colocate")


def test_colocated_engines_and_train_ranks_are_all_scheduled(cluster):
    import ray

    placement = make_placement("colocated", train_devices=2, rollout_devices=2, tp_size=1, use_gpu=True,
                               cpus_per_bundle=0.1, timeout_s=60)
    engines = _engine_like(placement, ENGINE_GPU_SHARE)
    ranks = []
    try:
        get_within([e.location.remote() for e in engines], 60, ["engine 0", "engine 1"], "engines")
        ranks = start_rank_actors(rank_slots(2, gpus=True, placement=placement), timeout_s=60)
        seen = ray.get([rank.location.remote() for rank in ranks])
        assert [(node, [int(g) for g in gpus]) for node, gpus in seen] == [
            (placement.train_locations[b].node, [placement.train_locations[b].gpu]) for b in placement.train_bundles]
    finally:
        _kill(engines + ranks)
        placement.remove()


def test_a_whole_gpu_next_to_an_engine_stays_pending_and_the_deadline_names_it(cluster):
    """What the trainer asked before: num_gpus=1 on a bundle where the engine took 0.01."""
    import ray

    placement = make_placement("colocated", train_devices=1, rollout_devices=1, tp_size=1, use_gpu=True,
                               cpus_per_bundle=0.1, timeout_s=60)
    engines = _engine_like(placement, 0.01)
    rank = ray.remote(TrainActor).options(num_cpus=0, num_gpus=1,
                                          scheduling_strategy=placement.train_strategy(0)).remote()
    try:
        get_within([engines[0].location.remote()], 60, ["engine 0"], "engines")
        with pytest.raises(DeadlineExceeded) as pending:
            get_within([rank.location.remote()], 3, [placement.train_rank_name(0)], "train ranks starting")
        location = placement.bundle_location(placement.train_bundles[0])
        assert f"train rank 0 (bundle {placement.train_bundles[0]}, node {location.node}, GPU {location.gpu})" \
            in str(pending.value)
    finally:
        _kill(engines + [rank])
        placement.remove()


def test_bundles_ordered_by_node_and_gpu_and_engines_on_one_node(cluster):
    placement = make_placement("colocated", train_devices=8, rollout_devices=8, tp_size=4, use_gpu=True,
                               cpus_per_bundle=0.1, timeout_s=60)
    try:
        ordered = [placement.bundle_location(b) for b in placement.train_bundles]
        assert ordered == [BundleLocation(node, gpu) for node in NODES for gpu in range(4)]
        assert [placement.engine_location(i) for i in range(2)] == [(NODES[0], 0), (NODES[1], 0)]
        for bundles in placement.engine_bundles:
            assert len({placement.bundle_location(b, "rollout").node for b in bundles}) == 1
    finally:
        placement.remove()


def test_cpu_bundles_count_their_position_on_the_node(cluster):
    placement = make_placement("disaggregated", train_devices=2, rollout_devices=2, tp_size=2, use_gpu=False,
                               cpus_per_bundle=0.2, timeout_s=60)
    try:
        for locations in (placement.train_locations, placement.rollout_locations):
            for node in {loc.node for loc in locations}:
                assert [loc.gpu for loc in locations if loc.node == node] == list(
                    range(sum(loc.node == node for loc in locations)))
        node, base = placement.engine_location(0)
        assert node in NODES and base == 0
    finally:
        placement.remove()


def test_an_engine_split_across_nodes_is_refused(cluster):
    """Another job holds a GPU of the first node: 7 bundles are 3 there and 4 on the second node, so the
    second engine of tp 2 would start on one node and end on the other."""
    import ray
    from ray.util.placement_group import placement_group, remove_placement_group

    other_job = placement_group([{"GPU": 1, "CPU": 0.1, f"node:{NODES[0]}": 0.01}])
    ray.get(other_job.ready(), timeout=60)
    try:
        with pytest.raises(ValueError, match=r"engine 1 \(rollout.tp_size 2\) would get .*node 127\.0\.0\.2, GPU \d; "
                                             r".*node 127\.0\.0\.3, GPU 0: an SGLang engine needs 2 consecutive GPUs"):
            make_placement("colocated", train_devices=7, rollout_devices=4, tp_size=2, use_gpu=True,
                           cpus_per_bundle=0.1, timeout_s=60)
        make_placement("colocated", train_devices=7, rollout_devices=7, tp_size=1, use_gpu=True,
                       cpus_per_bundle=0.1, timeout_s=30).remove()  # fits only if the refused group was removed
    finally:
        remove_placement_group(other_job)


def test_order_is_numeric_by_node_then_gpu():
    locations = [BundleLocation("127.0.0.10", 0), BundleLocation("127.0.0.3", 1), BundleLocation("127.0.0.3", 0),
                 BundleLocation("127.0.0.10", 1)]
    assert by_node_and_gpu(locations) == [2, 1, 0, 3]
    gap = [BundleLocation("10.0.0.1", 0), BundleLocation("10.0.0.1", 2)]
    with pytest.raises(ValueError, match="engine 0"):
        engine_groups([0, 1], gap, engines=1, tp_size=2)


def test_a_group_that_cannot_be_placed_is_named_and_removed(cluster):
    with pytest.raises(DeadlineExceeded, match=r"colocated placement group: placement group of 9 bundles .* not placed "
                                               r"after 2 s; .*nodes: 127\.0\.0\.[23], 127\.0\.0\.[23]\)"):
        make_placement("colocated", train_devices=9, rollout_devices=1, tp_size=1, use_gpu=True, cpus_per_bundle=0.1,
                       timeout_s=2)
    make_placement("colocated", train_devices=8, rollout_devices=8, tp_size=1, use_gpu=True, cpus_per_bundle=0.1,
                   timeout_s=30).remove()  # all 8 GPUs: the pending group did not keep any
