"""Two embedded engines as Ray actors (on placement-group bundles) behind a router.

A batch of groups completes with log-probs equal to an HF recomputation at the sampling temperature; our
own balancer serves the same engines; a weight update in the middle of a batch (pause, load, flush,
continue) leaves every sample with log-probs of the weights its version names; killing an engine process
mid-batch still yields every requested sample exactly once, and the restarted engine has the new weights.
"""
from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import time

import pytest
from transformers import AutoTokenizer

from rollout.client import SGLangClient
from rollout.config import RolloutConfig
from rollout.manager import RolloutManager
from rollout.prompts import PromptBuilder
from rollout.router import Router

from conftest import hf_logprobs, hf_model, problems
from rollout.local_ray import init_local_ray

pytestmark = [pytest.mark.distributed, pytest.mark.slow]

TEMPERATURE = 1.3


@pytest.fixture(scope="module")
def fleet(tiny_model_dir, tmp_path_factory):
    import ray

    from rollout.engine_fleet import EngineFleet
    from rollout.placement import make_placement

    init_local_ray(num_cpus=2, log_to_driver=False)
    placement = make_placement("disaggregated", train_devices=1, rollout_devices=2, tp_size=1, use_gpu=False,
                               cpus_per_bundle=0.5)
    cfg = RolloutConfig(engine="embedded", num_engines=2, router="auto", dtype="float32", group_size=3,
                        max_new_tokens=16, dynamic_sampling=False, max_engine_restarts=2, max_retries=8,
                        retry_backoff_s=0.2)
    fleet = EngineFleet.start(cfg, str(tiny_model_dir), tmp_path_factory.mktemp("engine_logs"), placement=placement)
    yield fleet
    fleet.stop()
    placement.remove()
    ray.shutdown()


def served_per_engine(engine_urls: list[str]) -> list[int]:
    async def ask():
        counts = []
        for url in engine_urls:
            async with SGLangClient(url) as client:
                counts.append((await client.get("/get_server_info"))["served"])
        return counts

    return asyncio.run(ask())


def run_batch(cfg: RolloutConfig, url: str, tiny_model_dir, num_groups: int, during=None):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)

    async def go():
        async with SGLangClient(url, max_retries=cfg.max_retries, retry_backoff_s=cfg.retry_backoff_s) as client:
            manager = RolloutManager(cfg, client, PromptBuilder(tokenizer, "Be brief.", "Solve:"))
            rollout = asyncio.ensure_future(manager.rollout(iter(problems(num_groups)), num_groups, TEMPERATURE))
            if during is not None:
                await during()
            return await rollout, client.retries

    return asyncio.run(go())


def assert_complete(batch, num_groups: int, group_size: int) -> None:
    keys = [s.key for s in batch.samples]
    assert len(keys) == len(set(keys)) == num_groups * group_size, "a sample is missing or came twice"
    assert sorted({pid for pid, _ in keys}) == sorted(f"p{i}" for i in range(num_groups))
    for group in batch.groups:
        assert [s.group_index for s in group] == list(range(group_size))
    assert all(s.finish_reason in ("stop", "length") and s.response_ids for s in batch.samples)


def assert_logprobs_match_hf(batch, model_dirs) -> None:
    """`model_dirs`: the checkpoint of each weight version the samples may carry."""
    models = {version: hf_model(d) for version, d in model_dirs.items()}
    worst = 0.0
    for sample in batch.samples:
        assert sample.temperature == TEMPERATURE
        ref = hf_logprobs(models[sample.weight_version], sample.prompt_ids, sample.response_ids, TEMPERATURE)
        worst = max(worst, max(abs(a - b) for a, b in zip(sample.rollout_logprobs, ref)))
    assert worst < 1e-4, f"engine log-probs differ from HF recomputation by {worst}"


def test_batch_of_groups_through_router_matches_hf_logprobs(fleet, tiny_model_dir):
    before = served_per_engine(fleet.engine_urls)
    batch, _ = run_batch(fleet.cfg, fleet.url, tiny_model_dir, num_groups=4)
    assert_complete(batch, 4, fleet.cfg.group_size)
    assert_logprobs_match_hf(batch, {0: tiny_model_dir})
    served = [b - a for a, b in zip(before, served_per_engine(fleet.engine_urls))]
    assert sum(served) == 12 and min(served) > 0, f"the router did not use both engines: {served}"
    assert batch.metrics["rollout/response_len_max"] <= 16
    assert 0 <= batch.metrics["rollout/truncation_ratio"] <= 1


def test_our_balancer_serves_the_same_engines(fleet, tiny_model_dir, tmp_path):
    router = Router.start(fleet.engine_urls, "least_outstanding", tmp_path)
    try:
        before = served_per_engine(fleet.engine_urls)
        batch, _ = run_batch(fleet.cfg, router.url, tiny_model_dir, num_groups=2)
        served = [b - a for a, b in zip(before, served_per_engine(fleet.engine_urls))]
    finally:
        router.stop()
    assert_complete(batch, 2, fleet.cfg.group_size)
    assert_logprobs_match_hf(batch, {0: tiny_model_dir})
    assert sum(served) == 6 and min(served) > 0, f"the balancer did not use both engines: {served}"


def test_weight_update_mid_batch_gives_each_sample_its_versions_weights(fleet, tiny_model_dir, other_tiny_model_dir,
                                                                        tmp_path):
    from rollout.weight_sync import make_weight_sync

    new_weights = [list(hf_model(other_tiny_model_dir).named_parameters())]
    sync = make_weight_sync("disk", fleet.engine_urls, directory=tmp_path / "weights",
                            reference_model_dir=tiny_model_dir)
    cfg = RolloutConfig(**{**fleet.cfg.__dict__, "max_new_tokens": 64})

    async def update_when_busy():
        async with SGLangClient(fleet.engine_urls[0]) as client:
            while (await client.get("/get_server_info"))["running"] == 0:
                await asyncio.sleep(0.05)
        await fleet.update_weights(sync, [[(n, p.detach()) for n, p in new_weights[0]]], version=1)
        await sync.close()

    batch, retries = run_batch(cfg, fleet.url, tiny_model_dir, num_groups=4, during=update_when_busy)
    assert_complete(batch, 4, cfg.group_size)
    versions = {s.weight_version for s in batch.samples}
    assert 1 in versions and versions <= {0, 1}
    assert_logprobs_match_hf(batch, {0: tiny_model_dir, 1: other_tiny_model_dir})
    assert all(info["weight_version"] == "1" and info["model_path"] == sync.restart_source()
               for info in fleet.info())


@pytest.mark.parametrize("router_kind, victim_index", [
    pytest.param("sglang_router", 0, marks=pytest.mark.skipif(
        importlib.util.find_spec("sglang_router") is None, reason="sglang-router is not installed")),
    ("least_outstanding", 1),
])
def test_killing_an_engine_mid_batch_loses_no_sample_and_repeats_none(fleet, tiny_model_dir, tmp_path, router_kind,
                                                                       victim_index):
    victim = fleet.info()[victim_index]
    cfg = RolloutConfig(**{**fleet.cfg.__dict__, "max_new_tokens": 64})
    router = Router.start(fleet.engine_urls, router_kind, tmp_path)

    async def kill_when_busy():
        async with SGLangClient(victim["url"]) as client:
            for _ in range(600):
                if (await client.get("/get_server_info"))["running"] > 0:
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail(f"engine {victim_index} never got work to be killed in the middle of")
        os.kill(victim["pid"], signal.SIGKILL)

    try:
        batch, _ = run_batch(cfg, router.url, tiny_model_dir, num_groups=6, during=kill_when_busy)
    finally:
        router.stop()
    assert_complete(batch, 6, cfg.group_size)

    deadline = time.monotonic() + 120
    while not restarted_and_healthy(fleet, victim_index, victim["pid"]) and time.monotonic() < deadline:
        time.sleep(0.5)
    info = fleet.info()[victim_index]
    assert info["restarts"] == 1 and info["pid"] != victim["pid"] and info["failed"] is None
    assert served_per_engine([info["url"]]) == [0], "the restarted engine is a fresh process on the same URL"
    assert engine_weight_version(info["url"]) == "1", "a restarted engine loads the newest weights it was given"


def engine_weight_version(url: str) -> str:
    async def ask():
        async with SGLangClient(url) as client:
            return (await client.get("/get_model_info"))["weight_version"]

    return asyncio.run(ask())


def restarted_and_healthy(fleet, index: int, old_pid: int) -> bool:
    info = fleet.info()[index]

    async def healthy():
        async with SGLangClient(info["url"]) as client:
            return await client.health()

    return info["pid"] != old_pid and asyncio.run(healthy())
