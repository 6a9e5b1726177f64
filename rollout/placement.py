"""Ray placement groups for the trainer and the engines: one bundle per GPU.

Colocated: one group; train rank i and the engines share its bundles, time-sharing each GPU (engines
release their memory while the trainer runs). Disaggregated: one group for training and a disjoint one for
rollout. On a CPU machine the bundles hold CPU shares instead of GPUs and the same logic runs.
"""
from __future__ import annotations

from dataclasses import dataclass

BUNDLE_STRATEGY = "PACK"


@dataclass
class Placement:
    mode: str
    train_group: object  # ray.util.placement_group.PlacementGroup
    rollout_group: object
    train_bundles: list[int]
    engine_bundles: list[list[int]]  # the bundles (GPUs) of each engine, tp_size of them

    def engine_strategy(self, engine_index: int):
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        return PlacementGroupSchedulingStrategy(self.rollout_group,
                                                placement_group_bundle_index=self.engine_bundles[engine_index][0])

    def train_strategy(self, rank: int):
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        return PlacementGroupSchedulingStrategy(self.train_group, placement_group_bundle_index=self.train_bundles[rank])

    def remove(self) -> None:
        from ray.util.placement_group import remove_placement_group

        remove_placement_group(self.rollout_group)
        if self.train_group is not self.rollout_group:
            remove_placement_group(self.train_group)


def bundle(use_gpu: bool, cpus_per_bundle: float) -> dict[str, float]:
    return {"GPU": 1, "CPU": cpus_per_bundle} if use_gpu else {"CPU": cpus_per_bundle}


def make_placement(mode: str, train_devices: int, rollout_devices: int, tp_size: int, use_gpu: bool,
                   cpus_per_bundle: float = 1.0, timeout_s: float = 120.0) -> Placement:
    """Reserve bundles and assign them; `rollout_devices` must be a multiple of tp_size."""
    import ray
    from ray.util.placement_group import placement_group

    if rollout_devices % tp_size:
        raise ValueError(f"rollout devices ({rollout_devices}) must be a multiple of rollout.tp_size ({tp_size})")
    engines = [list(range(i, i + tp_size)) for i in range(0, rollout_devices, tp_size)]
    if mode == "colocated":
        if rollout_devices > train_devices:
            raise ValueError(f"colocated mode shares the trainer's {train_devices} devices; "
                             f"{rollout_devices} rollout devices do not fit")
        group = placement_group([bundle(use_gpu, cpus_per_bundle)] * train_devices, strategy=BUNDLE_STRATEGY)
        ray.get(group.ready(), timeout=timeout_s)
        return Placement(mode, group, group, list(range(train_devices)), engines)
    if mode == "disaggregated":
        train = placement_group([bundle(use_gpu, cpus_per_bundle)] * train_devices, strategy=BUNDLE_STRATEGY)
        rollout = placement_group([bundle(use_gpu, cpus_per_bundle)] * rollout_devices, strategy=BUNDLE_STRATEGY)
        ray.get([train.ready(), rollout.ready()], timeout=timeout_s)
        return Placement(mode, train, rollout, list(range(train_devices)), engines)
    raise ValueError(f"rollout.placement must be 'colocated' or 'disaggregated', got {mode!r}")
