"""The train ranks as Ray actors, driven from one place: TrainGroup's methods block until every rank
has done its part and return merged results.

One actor per rank (a GPU each on a cluster; a CPU share each here, gloo). Ranks meet through
env:// rendezvous at the first actor's node address and a port free there.
"""
from __future__ import annotations

import os
import socket
from typing import Optional

from megatron_mc.config import RunConfig
from megatron_mc.trainer.batch import TrainBatch
from megatron_mc.trainer.results import merge_logprobs, merge_train_metrics

CPUS_PER_RANK_WITHOUT_GPUS = 0.5  # leaves room on a small CPU machine for the engine and the judge


def _rank_resources(gpus: bool, cpus_per_rank: Optional[float], placement_group, rank: int) -> dict:
    """A GPU (or a CPU share) per rank; within a placement group, no more CPU than the rank's bundle has."""
    wanted = {"num_gpus": 1, "num_cpus": cpus_per_rank or 1} if gpus else {
        "num_cpus": cpus_per_rank or CPUS_PER_RANK_WITHOUT_GPUS}
    if placement_group is not None:
        wanted["num_cpus"] = min(wanted["num_cpus"], placement_group.bundle_specs[rank].get("CPU", 0))
    return wanted


class TrainActor:
    """A Ray actor holding one TrainWorker; `call` runs one of its methods."""

    def __init__(self):
        self.worker = None

    def rendezvous_address(self) -> tuple[str, int]:
        import ray

        with socket.socket() as s:
            s.bind(("", 0))
            port = s.getsockname()[1]
        return ray.util.get_node_ip_address(), port

    def setup(self, cfg: RunConfig, hf_dir: str, rank: int, world_size: int, address: str, port: int) -> None:
        os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank),
                          MASTER_ADDR=address, MASTER_PORT=str(port))
        from megatron_mc.quiet import silence_megatron_notices

        silence_megatron_notices()  # TE/Apex-missing notices, said once per rank otherwise
        from megatron_mc.trainer.worker import TrainWorker  # imports Megatron: only inside the actor

        self.worker = TrainWorker(cfg, hf_dir)

    def call(self, method: str, *args, **kwargs):
        return getattr(self.worker, method)(*args, **kwargs)


class TrainGroup:
    def __init__(self, cfg: RunConfig, hf_dir: str, placement_group=None, cpus_per_rank: Optional[float] = None):
        import ray

        self.cfg = cfg
        world_size = cfg.cluster.train_gpus
        cfg.parallel.dp(world_size)  # raises naming the sizes when they do not tile the ranks
        gpus = ray.cluster_resources().get("GPU", 0) > 0
        actor_class = ray.remote(TrainActor)
        self.actors = []
        for rank in range(world_size):
            options = _rank_resources(gpus, cpus_per_rank, placement_group, rank)
            if placement_group is not None:
                from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

                options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
                    placement_group=placement_group, placement_group_bundle_index=rank)
            if not gpus:
                options["runtime_env"] = {"env_vars": {"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}}
            self.actors.append(actor_class.options(**options).remote())
        address, port = ray.get(self.actors[0].rendezvous_address.remote())
        ray.get([actor.setup.remote(cfg, hf_dir, rank, world_size, address, port)
                 for rank, actor in enumerate(self.actors)])

    def _all(self, method: str, *args, **kwargs) -> list:
        import ray

        args = [ray.put(a) if isinstance(a, TrainBatch) else a for a in args]
        return ray.get([actor.call.remote(method, *args, **kwargs) for actor in self.actors])

    def compute_logprobs(self, batch: TrainBatch) -> list[list[float]]:
        """Per response token, at batch.temperature, forward only; data-parallel across the ranks."""
        return merge_logprobs(self._all("compute_logprobs", batch), len(batch))

    def compute_ref_logprobs(self, batch: TrainBatch) -> list[list[float]]:
        """compute_logprobs under the reference policy (the run's start weights); needs algo.kl_coef > 0."""
        return merge_logprobs(self._all("compute_ref_logprobs", batch), len(batch))

    def train(self, batch: TrainBatch) -> dict[str, float]:
        """One RL step's optimizer steps; old (and, with the KL term on, reference) log-probs are computed
        first when the batch has none."""
        if batch.old_logprobs is None:
            batch.old_logprobs = self.compute_logprobs(batch)
        if self.cfg.algo.needs_reference_model and batch.ref_logprobs is None:
            batch.ref_logprobs = self.compute_ref_logprobs(batch)
        return merge_train_metrics(self._all("train", batch))

    def train_sft(self, batch: TrainBatch) -> dict[str, float]:
        return merge_train_metrics(self._all("train_sft", batch))

    def update_engine_weights(self, kind: str, engine_urls: list[str], version: int, **options) -> None:
        self._all("update_engine_weights", kind, engine_urls, version, **options)

    def save_checkpoint(self, step_dir: str) -> None:
        self._all("save_checkpoint", str(step_dir))

    def load_checkpoint(self, step_dir: str) -> None:
        self._all("load_checkpoint", str(step_dir))

    def export_hf(self, out_dir: str, hf_config_dir: Optional[str] = None) -> list[str]:
        return self._all("export_hf", str(out_dir), None if hf_config_dir is None else str(hf_config_dir))[0]

    def shutdown(self) -> None:
        import ray

        if not self.actors:
            return
        try:
            ray.get([actor.call.remote("shutdown") for actor in self.actors], timeout=60)
        finally:
            for actor in self.actors:
                ray.kill(actor)
            self.actors = []
