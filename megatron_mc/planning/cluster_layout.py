"""Layouts a cluster cannot run, refused from the config alone before anything starts (every run, not
only --dry-run): engines wider than a node, and CUDA IPC weight sync where engine and trainer GPUs do not
share a node or the ranks on an engine's GPUs do not hold every layer."""
from __future__ import annotations

from megatron_mc.config import RunConfig
from megatron_mc.planning.placement import MULTI_NODE_ENGINES, place
from megatron_mc.typed_config import ConfigError


def check_cluster_layout(cfg: RunConfig) -> None:
    """Raise ConfigError naming the keys when the cluster layout cannot work."""
    check_engines_fit_nodes(cfg)
    check_weight_sync_transport(cfg)


def check_engines_fit_nodes(cfg: RunConfig) -> None:
    rollout, cluster = cfg.rollout, cfg.cluster
    if rollout.tp_size > cluster.gpus_per_node:
        raise ConfigError(f"rollout.tp_size {rollout.tp_size} is wider than a node (cluster.gpus_per_node "
                          f"{cluster.gpus_per_node}); {MULTI_NODE_ENGINES}. Use rollout.tp_size <= "
                          f"{cluster.gpus_per_node} and more rollout.num_engines")
    try:
        place(cluster.mode, cluster.num_nodes, cluster.gpus_per_node, cluster.engine_gpus, rollout.num_engines,
              rollout.tp_size)
    except ValueError as e:
        raise ConfigError(f"rollout.tp_size {rollout.tp_size}, rollout.num_engines {rollout.num_engines}, "
                          f"cluster.gpus_per_node {cluster.gpus_per_node}: {e}") from None


def check_weight_sync_transport(cfg: RunConfig) -> None:
    """`tensor` hands the engines CUDA IPC handles of the trainer's GPU memory: it works only where each
    engine's GPUs hold train ranks, all on one node, holding every layer (no pipeline stages)."""
    if cfg.rollout.weight_sync != "tensor":
        return
    cluster = cfg.cluster
    instead = ("use rollout.weight_sync: disk (rollout.weight_sync_dir on a filesystem every node shares) or "
               "cluster.mode: disaggregate with rollout.weight_sync: distributed (an NCCL broadcast group)")
    if cluster.mode == "disaggregate":
        raise ConfigError("rollout.weight_sync: tensor (CUDA IPC) needs engines on the trainer's GPUs, but "
                          "cluster.mode is disaggregate; use rollout.weight_sync: distributed (an NCCL broadcast "
                          "group) or disk")
    if cluster.num_nodes > 1:
        raise ConfigError(f"rollout.weight_sync: tensor (CUDA IPC) cannot cross nodes, and cluster.num_nodes is "
                          f"{cluster.num_nodes}; {instead}")
    if cfg.parallel.pp > 1:
        raise ConfigError(f"rollout.weight_sync: tensor (CUDA IPC) needs the train ranks on each engine's GPUs to "
                          f"hold every layer, but parallel.pp is {cfg.parallel.pp} (each pipeline stage holds "
                          f"other layers); {instead}")
