"""A single-machine Ray cluster whose node address is a loopback one.

Without an address Ray takes the machine's outward address for its node (the route to the internet's),
and everything the project binds to "the node's address" (engine servers, the router, weight-sync
rendezvous) would listen there. On one machine nothing needs to leave it, so the node gets 127.0.0.2:
Ray replaces 127.0.0.1 and localhost with the outward address, but keeps any other loopback address.
"""
from __future__ import annotations

import os

LOCAL_NODE_ADDRESS = "127.0.0.2"


def init_local_ray(**options) -> None:
    import ray

    options.setdefault("num_cpus", max(2, len(os.sched_getaffinity(0))))
    options.setdefault("include_dashboard", False)
    ray.init(address="local", _node_ip_address=LOCAL_NODE_ADDRESS, **options)
