"""Partial rollouts across a weight update (train.async): the engine pauses (running requests come back
aborted with what they generated), takes version 1 and continues. The manager continues each response from
its prefix, so one response holds tokens of both versions and says which; or, in restart mode, asks again
from the prompt. A response older than the bound is generated again, never returned.

The real embedded server runs in this process (slowed to 20 ms a token so the pause lands mid-response),
with the engine's end-of-sequence ignored so every response runs to the budget."""
from __future__ import annotations

import asyncio

import aiohttp

from rollout.client import SGLangClient
from rollout.config import RolloutConfig
from rollout.embedded_engine import EmbeddedEngine
from rollout.manager import RolloutManager
from rollout.prompts import PromptBuilder

from conftest import build_tokenizer, in_process_server, problems

BUDGET = 30


async def _group_across_an_update(model_dir, continue_partial: bool, min_version: int | None = None,
                                  announce_pause: bool = True, max_retries: int = 5):
    engine = EmbeddedEngine(str(model_dir), seconds_per_token=0.02)
    engine.eos_token_ids = frozenset()
    async with in_process_server(engine) as url:
        async with SGLangClient(url, max_retries=0) as client, aiohttp.ClientSession() as http:
            cfg = RolloutConfig(engine="embedded", group_size=2, max_new_tokens=BUDGET, dynamic_sampling=False,
                                max_retries=max_retries)
            manager = RolloutManager(cfg, client, PromptBuilder(build_tokenizer(), "", ""),
                                     expected_weight_version=min_version, continue_partial=continue_partial)
            group = asyncio.ensure_future(manager.generate_group(problems(1)[0], 1.0, score=False))
            await asyncio.sleep(0.3)  # ~15 tokens in
            if announce_pause:
                manager.note_pause()  # as the driver does before it pauses the engines for a weight update
            for path, body in (("/pause_generation", {"mode": "abort"}),
                               ("/update_weight_version", {"new_version": "1"}), ("/continue_generation", {})):
                async with http.post(url + path, json=body) as resp:
                    assert resp.status == 200, await resp.text()
            return await group, manager


def test_a_response_continues_from_its_prefix_and_records_each_tokens_version(tiny_model_dir):
    group, manager = asyncio.run(_group_across_an_update(tiny_model_dir, continue_partial=True))
    assert manager.continued_samples == 2
    for sample in group:
        assert len(sample.response_ids) == len(sample.rollout_logprobs) == BUDGET
        assert sample.finish_reason == "length" and sample.weight_version == 1
        versions = sample.token_versions
        first_new = versions.index(1)
        assert 0 < first_new < BUDGET and versions == [0] * first_new + [1] * (BUDGET - first_new)
        assert sample.oldest_version == 0 and sample.versions == versions
        # two pieces decoded as one text
        assert sample.response_text == build_tokenizer().decode(sample.response_ids, skip_special_tokens=False)


def test_restart_mode_asks_again_from_the_prompt_and_a_pause_is_no_failure(tiny_model_dir):
    group, manager = asyncio.run(_group_across_an_update(tiny_model_dir, continue_partial=False, max_retries=0))
    assert manager.continued_samples == 0
    for sample in group:
        assert len(sample.response_ids) == BUDGET and sample.finish_reason == "length"
        assert sample.token_versions == [] and sample.versions == [1] * BUDGET


def test_a_continued_response_older_than_the_bound_is_generated_again(tiny_model_dir):
    group, manager = asyncio.run(_group_across_an_update(tiny_model_dir, continue_partial=True, min_version=1))
    assert manager.stale_samples == 2
    for sample in group:
        assert len(sample.response_ids) == BUDGET and sample.versions == [1] * BUDGET


def test_an_abort_nobody_announced_counts_against_max_retries(tiny_model_dir):
    group, _ = asyncio.run(_group_across_an_update(tiny_model_dir, continue_partial=False, announce_pause=False,
                                                   max_retries=0))
    assert all(sample.finish_reason == "abort" for sample in group)  # returned as such; the loop never trains it
