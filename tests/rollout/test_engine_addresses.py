"""Engines listen on their node's address, the router on the driver's (issue 10, finding 2).

A two-node simulated cluster (ray.cluster_utils.Cluster): the driver's node 127.0.0.2 holds no GPU, the
node 127.0.0.3 declares two, so the engine's placement-group bundle can only land there. The engine must
answer at http://127.0.0.3:PORT (where the router, the trainer's sending rank and clients on other nodes look
for it) and not on 127.0.0.1, which other nodes cannot reach; the router binds 127.0.0.2 and reaches it.

The router's own request timeout (sglang-router: 1800 s by default) is the client's (finding 13), checked
with sglang-router's own argument parser.
"""
from __future__ import annotations

import asyncio
import importlib.util
import socket
from urllib.parse import urlsplit

import pytest

from rollout.client import SGLangClient
from rollout.config import RolloutConfig
from rollout.router import sglang_router_command

DRIVER_NODE = "127.0.0.2"
ENGINE_NODE = "127.0.0.3"


@pytest.fixture(scope="module")
def two_node_cluster():
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "num_gpus": 0, "node_ip_address": DRIVER_NODE, "include_dashboard": False})
    cluster.add_node(num_cpus=1, num_gpus=2, node_ip_address=ENGINE_NODE)
    ray.init(address=cluster.address, log_to_driver=False)
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def refuses_connections(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex((host, port)) != 0


@pytest.mark.skipif(importlib.util.find_spec("sglang_router") is None, reason="sglang-router is not installed")
def test_sglang_router_binds_the_given_host_and_waits_as_long_as_the_client():
    from sglang_router.launch_router import parse_router_args

    client_timeout_s = RolloutConfig().request_timeout_s
    command = sglang_router_command(["http://127.0.0.3:30001"], "127.0.0.2", 30000, client_timeout_s)
    assert command[1:3] == ["-m", "sglang_router.launch_router"]
    args = parse_router_args(command[3:])
    assert args.host == "127.0.0.2" and args.port == 30000 and args.worker_urls == ["http://127.0.0.3:30001"]
    assert args.request_timeout_secs >= client_timeout_s > 1800


@pytest.mark.distributed
@pytest.mark.slow
def test_engine_binds_its_nodes_address_and_the_router_the_drivers(two_node_cluster, tiny_model_dir, tmp_path):
    import ray

    from rollout.engine_fleet import EngineFleet
    from rollout.placement import ENGINE_GPU_SHARE, make_placement

    placement = make_placement("disaggregated", train_devices=1, rollout_devices=1, tp_size=1, use_gpu=True,
                               cpus_per_bundle=0.25, timeout_s=60)
    cfg = RolloutConfig(engine="embedded", num_engines=1, router="auto", dtype="float32", max_new_tokens=4,
                        engine_startup_timeout_s=120)
    fleet = EngineFleet.start(cfg, str(tiny_model_dir), tmp_path, placement=placement)
    try:
        engine = urlsplit(fleet.engine_urls[0])
        assert engine.hostname == ENGINE_NODE, f"the engine registered {fleet.engine_urls[0]}"
        assert refuses_connections("127.0.0.1", engine.port), "the engine also listens on 127.0.0.1"
        assert urlsplit(fleet.url).hostname == DRIVER_NODE, f"the router listens at {fleet.url}"
        assert fleet.info()[0]["base_gpu_id"] == placement.engine_location(0)[1]

        # the engine's share of its one-GPU bundle, so a colocated train rank's share still fits
        group_gpu = f"GPU_group_{placement.engine_bundles[0][0]}_{placement.rollout_group.id.hex()}"
        assert ray.available_resources()[group_gpu] == pytest.approx(1 - ENGINE_GPU_SHARE)

        async def generate_through_router():
            async with SGLangClient(fleet.url, engine_urls=fleet.engine_urls) as client:
                return await client.generate([5, 6, 7], {"max_new_tokens": 4, "temperature": 0.0})

        out = asyncio.run(generate_through_router())
        assert out.finish_reason in ("stop", "length") and out.weight_version == "0"
    finally:
        fleet.stop()
        placement.remove()
