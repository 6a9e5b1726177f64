"""The train ranks as Ray actors, driven from one place: TrainGroup's methods block until every rank
has done its part and return merged results.

One actor per rank (a GPU share each on a cluster; a CPU share each here, gloo). Ranks meet through
env:// rendezvous at the first actor's node address and a port free there. Every wait has a deadline whose
error names the ranks still pending (bundle, node, GPU), instead of hanging a cluster job.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Optional

from megatron_mc.config import RunConfig
from megatron_mc.trainer.batch import TrainBatch
from megatron_mc.trainer.moe_diagnostics import merge_moe_metrics
from megatron_mc.trainer.results import merge_logprobs, merge_train_metrics
from rollout.placement import Placement, train_gpu_share
from rollout.waits import get_within

CPUS_PER_RANK_WITHOUT_GPUS = 0.5  # leaves room on a small CPU machine for the engine and the judge
START_TIMEOUT_S = 300.0  # every rank's actor scheduled and running
SETUP_TIMEOUT_S = 900.0  # Megatron initialized and the checkpoint loaded on every rank
STEP_TIMEOUT_S = 7200.0  # one collective call: a training step, a weight sync, a checkpoint
# CUDA_DEVICE_MAX_CONNECTIONS=1: Megatron's tensor-parallel communication overlap relies on kernels being
# issued in order on one hardware queue. NCCL_CUMEM_ENABLE=0: SGLang forces it off, and the trainer's
# side of a weight-sync NCCL group must use the same memory registration as the engines'.
GPU_RANK_ENV = {"CUDA_DEVICE_MAX_CONNECTIONS": "1", "NCCL_CUMEM_ENABLE": "0"}
CPU_RANK_ENV = {"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}


@dataclass(frozen=True)
class RankSlot:
    """Where one train rank runs: its Ray actor options and the name its waits report."""
    options: dict
    name: str


def rank_slots(world_size: int, gpus: bool, placement: Optional[Placement] = None, placement_group=None,
               cpus_per_rank: Optional[float] = None) -> list[RankSlot]:
    """A GPU share or a CPU share per rank; in a placement (ranks on its train bundles in node and GPU
    order) or a bare placement group (rank i on bundle i), no more CPU than the bundle has. The GPU share
    is the placement mode's (train_gpu_share); outside a placement a rank owns its GPU."""
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    gpu_share = train_gpu_share(placement.mode) if placement is not None else 1.0
    slots = []
    for rank in range(world_size):
        options = ({"num_gpus": gpu_share, "num_cpus": cpus_per_rank or 1,
                    "runtime_env": {"env_vars": dict(GPU_RANK_ENV)}} if gpus else
                   {"num_cpus": cpus_per_rank or CPUS_PER_RANK_WITHOUT_GPUS,
                    "runtime_env": {"env_vars": dict(CPU_RANK_ENV)}})
        name = f"train rank {rank}"
        if placement is not None:
            options["num_cpus"] = min(options["num_cpus"], placement.train_bundle_spec(rank).get("CPU", 0))
            options["scheduling_strategy"] = placement.train_strategy(rank)
            name = placement.train_rank_name(rank)
        elif placement_group is not None:
            options["num_cpus"] = min(options["num_cpus"], placement_group.bundle_specs[rank].get("CPU", 0))
            options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
                placement_group=placement_group, placement_group_bundle_index=rank)
            name = f"train rank {rank} (bundle {rank})"
        slots.append(RankSlot(options, name))
    return slots


def start_rank_actors(slots: list[RankSlot], timeout_s: float) -> list:
    """One TrainActor per slot, returned once every one runs; those still pending at the deadline are named
    (DeadlineExceeded) and every actor started here is killed."""
    import ray

    actor_class = ray.remote(TrainActor)
    actors = [actor_class.options(**slot.options).remote() for slot in slots]
    try:
        get_within([actor.location.remote() for actor in actors], timeout_s, [slot.name for slot in slots],
                   "train ranks starting (an actor stays pending while its bundle lacks the GPU/CPU share it asks)")
    except BaseException:
        for actor in actors:
            ray.kill(actor)
        raise
    return actors


class TrainActor:
    """A Ray actor holding one TrainWorker; `call` runs one of its methods."""

    def __init__(self):
        self.worker = None

    def location(self) -> tuple[str, list]:
        """(node address, GPU ids Ray gave this actor); answering at all means the actor was scheduled."""
        import ray

        return ray.util.get_node_ip_address(), list(ray.get_gpu_ids())

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


def _merged(per_rank: list[dict]) -> dict:
    """The ranks' train results as the step's metrics: the loss metrics and, for MoE, the diagnostics."""
    return merge_train_metrics(per_rank) | merge_moe_metrics(per_rank)


class TrainGroup:
    def __init__(self, cfg: RunConfig, hf_dir: str, placement: Optional[Placement] = None, placement_group=None,
                 cpus_per_rank: Optional[float] = None, start_timeout_s: float = START_TIMEOUT_S,
                 setup_timeout_s: float = SETUP_TIMEOUT_S, step_timeout_s: float = STEP_TIMEOUT_S):
        """Ranks on `placement`'s train bundles (the run's layout), on a bare `placement_group` (rank i on
        bundle i) or wherever Ray puts them."""
        import ray

        self.cfg = cfg
        self.step_timeout_s = step_timeout_s
        world_size = cfg.cluster.train_gpus
        cfg.parallel.dp(world_size)  # raises naming the sizes when they do not tile the ranks
        gpus = ray.cluster_resources().get("GPU", 0) > 0
        slots = rank_slots(world_size, gpus, placement, placement_group, cpus_per_rank)
        self.names = [slot.name for slot in slots]
        self.actors = start_rank_actors(slots, start_timeout_s)
        try:
            (address, port), = get_within([self.actors[0].rendezvous_address.remote()], start_timeout_s,
                                          self.names[:1], "train rank 0 choosing the rendezvous port")
            get_within([actor.setup.remote(cfg, hf_dir, rank, world_size, address, port)
                        for rank, actor in enumerate(self.actors)], setup_timeout_s, self.names,
                       f"train ranks setting up (Megatron groups at {address}:{port}, checkpoint {hf_dir})")
        except BaseException:
            self._kill()
            raise

    def _all(self, method: str, *args, **kwargs) -> list:
        import ray

        args = [ray.put(a) if isinstance(a, TrainBatch) else a for a in args]
        return get_within([actor.call.remote(method, *args, **kwargs) for actor in self.actors],
                          self.step_timeout_s, self.names, f"train ranks in {method}")

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
        return _merged(self._all("train", batch))

    def train_sft(self, batch: TrainBatch) -> dict[str, float]:
        return _merged(self._all("train_sft", batch))

    def update_engine_weights(self, kind: str, engine_urls: list[str], version: int, **options) -> None:
        self._all("update_engine_weights", kind, engine_urls, version, **options)

    def save_checkpoint(self, step_dir: str) -> None:
        self._all("save_checkpoint", str(step_dir))

    def load_checkpoint(self, step_dir: str) -> None:
        self._all("load_checkpoint", str(step_dir))

    def export_hf(self, out_dir: str, hf_config_dir: Optional[str] = None) -> list[str]:
        return self._all("export_hf", str(out_dir), None if hf_config_dir is None else str(hf_config_dir))[0]

    def offload(self, keep_weights: bool = False) -> None:
        """Every rank moves its parameters, gradients and optimizer state off the GPU (colocated: before
        the engines take their memory back); keep_weights leaves the parameters for a weight update."""
        self._all("offload", keep_weights=keep_weights)

    def onload(self) -> None:
        """Every rank moves them back onto its GPU (colocated: after the engines released theirs)."""
        self._all("onload")

    def shutdown(self) -> None:
        if not self.actors:
            return
        try:
            get_within([actor.call.remote("shutdown") for actor in self.actors], 60, self.names,
                       "train ranks shutting down")
        finally:
            self._kill()

    def _kill(self) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor)
        self.actors = []
