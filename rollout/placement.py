"""Ray placement groups for the trainer and the engines: one bundle per GPU.

Colocated: one group; train rank i and the engines share its bundles, time-sharing each GPU (engines
release their memory while the trainer runs). Disaggregated: one group for training and a disjoint one for
rollout. On a CPU machine the bundles hold CPU shares instead of GPUs and the same logic runs.

Ray numbers a group's bundles in no particular node or GPU order, so once a group is placed each bundle's
(node, GPU id) is looked up, and train ranks and engines take the bundles sorted by node and GPU: ranks
next to each other share a node, and each engine gets the consecutive GPUs of one node that SGLang's
--base-gpu-id / --tp-size ask for.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import NamedTuple

from rollout.waits import get_within, placement_group_ready

BUNDLE_STRATEGY = "PACK"
DEFAULT_PLACEMENT_TIMEOUT_S = 300.0

# Ray schedules an actor on a bundle only while the GPU shares asked of that bundle sum to at most 1 (the
# bundle holds exactly one GPU); a request that does not fit stays pending forever. Colocated, an engine
# and a train rank ask for shares of the same bundle, so both must be fractions (slime: 0.2 and 0.4); the
# shares only schedule the actors, memory is time-shared by releasing it. Disaggregated train ranks own
# their GPU.
ENGINE_GPU_SHARE = 0.2
COLOCATED_TRAIN_GPU_SHARE = 0.4
# the lookup task that finds a bundle's GPU id, gone before anything else asks for the bundle
PROBE_GPU_SHARE = 0.01
assert ENGINE_GPU_SHARE + COLOCATED_TRAIN_GPU_SHARE + PROBE_GPU_SHARE <= 1


def train_gpu_share(mode: str) -> float:
    """The GPU share a train rank asks of its bundle in placement `mode` (colocated | disaggregated)."""
    if mode == "colocated":
        return COLOCATED_TRAIN_GPU_SHARE
    if mode == "disaggregated":
        return 1.0
    raise ValueError(f"rollout.placement must be 'colocated' or 'disaggregated', got {mode!r}")


class BundleLocation(NamedTuple):
    node: str  # the node's IP address
    gpu: int  # the GPU id on that node; without GPUs, the bundle's position among its node's bundles


def describe(location: BundleLocation, bundle: int) -> str:
    return f"bundle {bundle}, node {location.node}, GPU {location.gpu}"


@dataclass
class Placement:
    mode: str
    train_group: object  # ray.util.placement_group.PlacementGroup
    rollout_group: object
    train_bundles: list[int]  # train rank i runs on train_group's bundle train_bundles[i]
    engine_bundles: list[list[int]]  # the rollout_group bundles (GPUs) of each engine, tp_size of them
    train_locations: list[BundleLocation]  # by bundle index of train_group
    rollout_locations: list[BundleLocation]  # by bundle index of rollout_group

    def bundle_location(self, bundle: int, group: str = "train") -> BundleLocation:
        """Where bundle `bundle` of the train (or the rollout) group is."""
        return (self.train_locations if group == "train" else self.rollout_locations)[bundle]

    def engine_location(self, engine_index: int) -> tuple[str, int]:
        """(node address, base GPU id): the engine's server binds that node and uses GPUs base..base+tp-1."""
        return tuple(self.rollout_locations[self.engine_bundles[engine_index][0]])

    def train_rank_name(self, rank: int) -> str:
        bundle = self.train_bundles[rank]
        return f"train rank {rank} ({describe(self.train_locations[bundle], bundle)})"

    def engine_name(self, engine_index: int) -> str:
        bundle = self.engine_bundles[engine_index][0]
        return f"engine {engine_index} ({describe(self.rollout_locations[bundle], bundle)})"

    def engine_strategy(self, engine_index: int):
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        return PlacementGroupSchedulingStrategy(self.rollout_group,
                                                placement_group_bundle_index=self.engine_bundles[engine_index][0])

    def train_strategy(self, rank: int):
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        return PlacementGroupSchedulingStrategy(self.train_group, placement_group_bundle_index=self.train_bundles[rank])

    def train_bundle_spec(self, rank: int) -> dict[str, float]:
        return self.train_group.bundle_specs[self.train_bundles[rank]]

    def remove(self) -> None:
        from ray.util.placement_group import remove_placement_group

        remove_placement_group(self.rollout_group)
        if self.train_group is not self.rollout_group:
            remove_placement_group(self.train_group)


def bundle(use_gpu: bool, cpus_per_bundle: float) -> dict[str, float]:
    return {"GPU": 1, "CPU": cpus_per_bundle} if use_gpu else {"CPU": cpus_per_bundle}


def _where() -> tuple[str, list]:
    import ray

    return ray.util.get_node_ip_address(), list(ray.get_gpu_ids())


def locate_bundles(group, use_gpu: bool, timeout_s: float, what: str) -> list[BundleLocation]:
    """Each bundle's node and GPU id, from one short task per bundle (tasks reuse Ray's idle workers and
    leave nothing behind to kill)."""
    import ray
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    probe = ray.remote(_where)
    count = len(group.bundle_specs)
    share = {"num_cpus": 0, "num_gpus": PROBE_GPU_SHARE} if use_gpu else {"num_cpus": 0}
    refs = [probe.options(**share, scheduling_strategy=PlacementGroupSchedulingStrategy(
        group, placement_group_bundle_index=b)).remote() for b in range(count)]
    seen = get_within(refs, timeout_s, [f"{what} bundle {b}" for b in range(count)], f"{what}: locating bundles")
    if use_gpu:
        return [BundleLocation(node, int(gpus[0])) for node, gpus in seen]
    positions: dict[str, int] = {}
    locations = []
    for node, _ in seen:
        locations.append(BundleLocation(node, positions.get(node, 0)))
        positions[node] = positions.get(node, 0) + 1
    return locations


def by_node_and_gpu(locations: list[BundleLocation]) -> list[int]:
    """Bundle indices sorted by node address (numerically) and GPU id."""
    return sorted(range(len(locations)),
                  key=lambda b: (int(ipaddress.ip_address(locations[b].node)), locations[b].gpu))


def engine_groups(order: list[int], locations: list[BundleLocation], engines: int, tp_size: int) -> list[list[int]]:
    """The first engines * tp_size bundles of `order`, tp_size per engine; each engine's must be
    consecutive GPUs of one node (SGLang takes GPUs base_gpu_id .. base_gpu_id + tp_size - 1 of its node;
    multi-node engines are not supported)."""
    groups = [order[i * tp_size:(i + 1) * tp_size] for i in range(engines)]
    for index, bundles in enumerate(groups):
        first = locations[bundles[0]]
        wanted = [BundleLocation(first.node, first.gpu + k) for k in range(tp_size)]
        if [locations[b] for b in bundles] != wanted:
            got = "; ".join(describe(locations[b], b) for b in bundles)
            raise ValueError(
                f"engine {index} (rollout.tp_size {tp_size}) would get {got}: an SGLang engine needs "
                f"{tp_size} consecutive GPUs of one node (--base-gpu-id, --tp-size). Make rollout.tp_size divide "
                f"cluster.gpus_per_node and give the run whole nodes (no other job on their GPUs)")
    return groups


def _placed(group, use_gpu: bool, timeout_s: float, what: str) -> tuple[list[BundleLocation], list[int]]:
    placement_group_ready(group, timeout_s, what)
    locations = locate_bundles(group, use_gpu, timeout_s, what)
    return locations, by_node_and_gpu(locations)


def make_placement(mode: str, train_devices: int, rollout_devices: int, tp_size: int, use_gpu: bool,
                   cpus_per_bundle: float = 1.0, timeout_s: float = DEFAULT_PLACEMENT_TIMEOUT_S) -> Placement:
    """Reserve bundles, wait (at most timeout_s per wait) until they are placed, and assign them in node and
    GPU order; `rollout_devices` must be a multiple of tp_size."""
    from ray.util.placement_group import placement_group, remove_placement_group

    if rollout_devices % tp_size:
        raise ValueError(f"rollout devices ({rollout_devices}) must be a multiple of rollout.tp_size ({tp_size})")
    engines = rollout_devices // tp_size
    if mode == "colocated":
        if rollout_devices > train_devices:
            raise ValueError(f"colocated mode shares the trainer's {train_devices} devices; "
                             f"{rollout_devices} rollout devices do not fit")
        group = placement_group([bundle(use_gpu, cpus_per_bundle)] * train_devices, strategy=BUNDLE_STRATEGY)
        try:
            locations, order = _placed(group, use_gpu, timeout_s, "colocated placement group")
            return Placement(mode, group, group, order, engine_groups(order, locations, engines, tp_size),
                             locations, locations)
        except BaseException:
            remove_placement_group(group)
            raise
    if mode == "disaggregated":
        train = placement_group([bundle(use_gpu, cpus_per_bundle)] * train_devices, strategy=BUNDLE_STRATEGY)
        rollout = placement_group([bundle(use_gpu, cpus_per_bundle)] * rollout_devices, strategy=BUNDLE_STRATEGY)
        try:
            train_locations, train_order = _placed(train, use_gpu, timeout_s, "train placement group")
            rollout_locations, rollout_order = _placed(rollout, use_gpu, timeout_s, "rollout placement group")
            return Placement(mode, train, rollout, train_order,
                             engine_groups(rollout_order, rollout_locations, engines, tp_size),
                             train_locations, rollout_locations)
        except BaseException:
            remove_placement_group(train)
            remove_placement_group(rollout)
            raise
    raise ValueError(f"rollout.placement must be 'colocated' or 'disaggregated', got {mode!r}")
