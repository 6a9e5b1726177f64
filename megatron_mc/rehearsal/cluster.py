"""Simulated GPU nodes for a rehearsal: one Ray node per node of the config, each on a loopback address
of its own (127.0.0.2, 127.0.0.3, ...: all of 127.0.0.0/8 is loopback on Linux) and declaring the
config's GPUs per node as Ray GPU resources, so placement groups, fractional GPU shares and bundle order
are Ray's real scheduling and a server bound to the wrong address cannot be reached.

The environment is set before the nodes start, so the raylets and every worker and server they start
inherit it: gloo stays on the loopback interface, one thread per process on the shared cores.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

FIRST_NODE_ADDRESS = 2  # 127.0.0.2: 127.0.0.1 is left to whatever else the machine runs
REHEARSAL_ENV = {"GLOO_SOCKET_IFNAME": "lo", "RAY_AUTH_MODE": "disabled",
                 "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}


def node_address(index: int) -> str:
    return f"127.0.0.{FIRST_NODE_ADDRESS + index}"


@contextlib.contextmanager
def simulated_cluster(num_nodes: int, gpus_per_node: int) -> Iterator[str]:
    """Start the nodes (the first is the head) and yield the cluster's address; everything stops on exit."""
    from ray.cluster_utils import Cluster

    os.environ.update(REHEARSAL_ENV)
    # Logical CPUs: a bundle per GPU asks for one; the machine's real cores are shared by all nodes.
    node = {"num_cpus": gpus_per_node, "num_gpus": gpus_per_node, "object_store_memory": 100 * 1024 ** 2}
    cluster = Cluster(initialize_head=True, head_node_args={
        **node, "node_ip_address": node_address(0), "include_dashboard": False})
    try:
        for index in range(1, num_nodes):
            cluster.add_node(**node, node_ip_address=node_address(index))
        cluster.wait_for_nodes()
        yield cluster.address
    finally:
        import ray

        ray.shutdown()  # Ray refuses to remove the head node under a connected driver
        cluster.shutdown()
