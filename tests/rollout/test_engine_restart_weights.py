"""An engine restarted with old weights serves no sample until it has the newest (issue 10, finding 9).

Tensor and distributed sync push weights from memory: a restarted engine comes back with the weights it
started from. The manager refuses samples older than the step expects (asks again, counts them in
rollout/stale_samples), and the fleet keeps such an engine out of the router, reports it in
engines_needing_weights, and readmits it only once the newest weights are in.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import urllib.request

import pytest

from rollout.client import SGLangClient
from rollout.config import RolloutConfig
from rollout.manager import RolloutManager, StaleWeightsError
from rollout.prompts import PromptBuilder
from rollout.router import Router, router_workers

from conftest import build_tokenizer, hf_model, problems


def post(url: str, path: str, payload: dict) -> None:
    request = urllib.request.Request(f"{url}{path}", data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).close()


def server_info(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/get_server_info", timeout=10) as resp:
        return json.loads(resp.read())


def rollout(router_url: str, cfg: RolloutConfig, expected_version: int, num_groups: int):
    async def go():
        async with SGLangClient(router_url, max_retries=0) as client:
            manager = RolloutManager(cfg, client, PromptBuilder(build_tokenizer(), "Be brief.", "Solve:"))
            manager.expected_weight_version = expected_version  # as the driver sets it after a weight sync
            return await manager.rollout(iter(problems(num_groups)), num_groups, temperature=1.0)

    return asyncio.run(go())


@pytest.mark.distributed
def test_manager_asks_again_for_samples_from_stale_weights(embedded_server, tiny_model_dir, tmp_path):
    fresh, stale = embedded_server(tiny_model_dir), embedded_server(tiny_model_dir)
    post(fresh, "/update_weight_version", {"new_version": "1"})
    router = Router.start([fresh, stale], "least_outstanding", tmp_path, host="127.0.0.1")
    cfg = RolloutConfig(engine="embedded", group_size=3, max_new_tokens=8, dynamic_sampling=False, max_retries=12,
                        retry_backoff_s=0.05)
    try:
        served_before = server_info(stale)["served"]
        batch = rollout(router.url, cfg, expected_version=1, num_groups=3)
        assert server_info(stale)["served"] > served_before, "the balancer never used the stale engine"
        assert {s.weight_version for s in batch.samples} == {1}
        assert len(batch.samples) == 9 and batch.metrics["rollout/stale_samples"] > 0

        post(fresh, "/update_weight_version", {"new_version": "0"})
        with pytest.raises(StaleWeightsError, match="weight version 0 while this step expects 1"):
            rollout(router.url, RolloutConfig(**{**cfg.__dict__, "max_retries": 1}), expected_version=1, num_groups=1)
    finally:
        router.stop()


@pytest.fixture(scope="module")
def loopback_ray():
    """One simulated node on a loopback address (a plain ray.init would use the machine's own address)."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 2, "node_ip_address": "127.0.0.2", "include_dashboard": False})
    ray.init(address=cluster.address, log_to_driver=False)
    yield
    ray.shutdown()
    cluster.shutdown()


def routed_urls(fleet) -> set[str]:
    return {w["url"].rstrip("/") for w in router_workers(fleet.url)}


def push_tensors(urls: list[str], model_dir, version: int) -> None:
    from rollout.weight_sync import make_weight_sync

    bucket = [(name, p.detach()) for name, p in hf_model(model_dir).named_parameters()]

    async def go():
        sync = make_weight_sync("tensor", urls, engine="embedded")
        try:
            await sync.update([bucket], version)
        finally:
            await sync.close()

    asyncio.run(go())


def generate_many(router_url: str, count: int) -> list[str]:
    async def go():
        async with SGLangClient(router_url) as client:
            outs = await asyncio.gather(*(client.generate([5, 6, 7 + i], {"max_new_tokens": 4}) for i in range(count)))
        return [o.weight_version for o in outs]

    return asyncio.run(go())


@pytest.mark.distributed
@pytest.mark.slow
@pytest.mark.parametrize("router_kind", ["sglang_router", "least_outstanding"])
def test_engine_restarted_under_tensor_sync_is_held_out_until_readmitted(loopback_ray, tiny_model_dir,
                                                                          other_tiny_model_dir, tmp_path, router_kind):
    from rollout.engine_fleet import EngineFleet

    if router_kind == "sglang_router":
        pytest.importorskip("sglang_router")
    cfg = RolloutConfig(engine="embedded", num_engines=2, router=router_kind, dtype="float32",
                        max_engine_restarts=2, weight_sync="tensor", engine_startup_timeout_s=120)
    fleet = EngineFleet.start(cfg, str(tiny_model_dir), tmp_path, seed=1)
    try:
        push_tensors(fleet.engine_urls, other_tiny_model_dir, version=1)
        fleet.note_weights(None, 1)  # pushed from memory: no checkpoint a restart could load
        assert fleet.engines_needing_weights(1) == []

        victim = fleet.info()[0]
        os.kill(victim["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 120
        while (info := fleet.info()[0])["restarted_at"] is None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert info["restarts"] == 1 and info["restart_weight_version"] == "0" and info["failed"] is None
        assert fleet.engines_needing_weights(1) == [0]
        assert routed_urls(fleet) == {fleet.engine_urls[1]}, "the restarted engine with old weights is routed to"
        assert not info["routed"]
        assert set(generate_many(fleet.url, 8)) == {"1"}
        assert server_info(fleet.engine_urls[0])["served"] == 0

        with pytest.raises(Exception, match="serves weight version 0 .* the newest is 1"):
            fleet.readmit([0])
        push_tensors([fleet.engine_urls[0]], other_tiny_model_dir, version=1)
        fleet.readmit([0])
        assert fleet.engines_needing_weights(1) == []
        assert routed_urls(fleet) == set(fleet.engine_urls) and fleet.info()[0]["routed"]
        assert set(generate_many(fleet.url, 8)) == {"1"}
        assert server_info(fleet.engine_urls[0])["served"] > 0, "the readmitted engine gets no request"
    finally:
        fleet.stop()
