"""Aborts reach every engine behind the router (issue 10, finding 4).

sglang-router has no /abort_request route (it answers 404), so an abort sent to the router URL is lost and
the surplus requests of dynamic sampling keep the engines busy until they finish. The client sends aborts
to every engine instead. Two embedded engines behind the real sglang-router, on a model that never emits
EOS (every request runs its full max_new_tokens, about 6 s per batch here): once the batch is full and the
surplus groups are cancelled, both engines are idle within two seconds, long before their queues would have
drained.
"""
from __future__ import annotations

import asyncio
import importlib.util
import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from rollout.client import SGLangClient
from rollout.config import RolloutConfig
from rollout.manager import RolloutManager
from rollout.prompts import PromptBuilder
from rollout.router import Router

from conftest import build_tokenizer, problems

pytestmark = [pytest.mark.distributed, pytest.mark.slow, pytest.mark.skipif(
    importlib.util.find_spec("sglang_router") is None, reason="sglang-router is not installed")]

MAX_NEW_TOKENS = 1000
IDLE_WITHIN_S = 2.0


@pytest.fixture(scope="module")
def endless_model_dir(tmp_path_factory) -> Path:
    """A tiny Qwen3 without an EOS token: generation stops only at max_new_tokens (or an abort)."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tokenizer = build_tokenizer()
    config = Qwen3Config(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=4096,
                         tie_word_embeddings=True, eos_token_id=None, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=None)
    torch.manual_seed(3)
    out = tmp_path_factory.mktemp("endless_qwen3")
    Qwen3ForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def load(url: str) -> int:
    with urllib.request.urlopen(f"{url}/get_server_info", timeout=5) as resp:
        info = json.loads(resp.read())
    return info["running"] + info["queued"]


def test_sglang_router_has_no_abort_route(embedded_server, endless_model_dir, tmp_path):
    engine = embedded_server(endless_model_dir, max_batch=2)
    router = Router.start([engine], "sglang_router", tmp_path, host="127.0.0.1")
    try:
        request = urllib.request.Request(f"{router.url}/abort_request", data=b'{"abort_all": true}', method="POST",
                                         headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        assert refused.value.code == 404
    finally:
        router.stop()


def test_a_router_whose_port_was_taken_meanwhile_starts_on_another(embedded_server, endless_model_dir, tmp_path,
                                                                    monkeypatch):
    from tests.rollout.taken_port import first_port_found_free_is_taken

    engine = embedded_server(endless_model_dir, max_batch=2)
    with first_port_found_free_is_taken(monkeypatch) as taken:
        router = Router.start([engine], "sglang_router", tmp_path, host="127.0.0.1")
        try:
            assert router.url != f"http://127.0.0.1:{taken}"
            assert load(engine) == 0 and urllib.request.urlopen(f"{router.url}/health", timeout=5).status == 200
        finally:
            router.stop()


def test_cancelled_surplus_groups_stop_on_every_engine(embedded_server, endless_model_dir, tmp_path):
    engines = [embedded_server(endless_model_dir, max_batch=2) for _ in range(2)]
    router = Router.start(engines, "sglang_router", tmp_path, host="127.0.0.1")
    cfg = RolloutConfig(engine="embedded", group_size=2, max_new_tokens=MAX_NEW_TOKENS, dynamic_sampling=True,
                        over_sampling_factor=4.0, max_sampling_rounds=1, max_retries=0)
    prompts = PromptBuilder(build_tokenizer(), "Be brief.", "Solve:")

    async def distinct_rewards(problem, sample):  # every group is kept: the first to finish fills the batch
        return float(sample.group_index), {"verdict": "AC"}

    async def rollout_then_wait_idle():
        async with SGLangClient(router.url, max_retries=0, engine_urls=engines) as client:
            manager = RolloutManager(cfg, client, prompts, distinct_rewards)
            batch = await manager.rollout(iter(problems(4)), num_groups=1, temperature=1.0)
        returned = time.monotonic()
        while any(load(url) for url in engines) and time.monotonic() - returned < IDLE_WITHIN_S:
            await asyncio.sleep(0.1)
        return batch, [load(url) for url in engines]

    try:
        batch, left = asyncio.run(rollout_then_wait_idle())
    finally:
        router.stop()
    assert len(batch.groups) == 1 and all(s.finish_reason == "length" for s in batch.samples)
    assert left == [0, 0], (f"{IDLE_WITHIN_S} s after the batch was full the engines still run or queue {left} "
                            "surplus requests: their aborts were lost")
