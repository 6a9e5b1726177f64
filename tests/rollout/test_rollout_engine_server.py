"""One embedded engine server in a child process, driven through the client and the RolloutManager.

Weight updates through disk, in memory (tensor bytes) and a gloo group: greedy outputs follow the new
weights, every Sample carries the version the engine reports, and a bucket that names no parameter is
refused without touching the weights or the version. Dynamic sampling keeps only groups whose rewards
differ, over-sampling until the batch is full; responses without a program get reward 0 and verdict
no_code without reaching the judge."""
from __future__ import annotations

import asyncio

import pytest
import torch
from transformers import AutoTokenizer

from rollout.client import EngineRequestError, SGLangClient
from rollout.config import RolloutConfig
from rollout.manager import RolloutManager
from rollout.process import free_port
from rollout.prompts import PromptBuilder
from rollout.weight_sync import make_weight_sync

from conftest import hf_model, problems

NEW_TOKENS = 12


def hf_greedy(model, prompt_ids: list[int]) -> list[int]:
    out = model.generate(torch.tensor([prompt_ids]), attention_mask=torch.ones(1, len(prompt_ids), dtype=torch.long),
                         do_sample=False, max_new_tokens=NEW_TOKENS, pad_token_id=0)
    return out[0, len(prompt_ids):].tolist()


def buckets_of(model, size: int = 5):
    named = [(name, p.detach().clone()) for name, p in model.named_parameters()]
    return [named[i:i + size] for i in range(0, len(named), size)]


@pytest.fixture(scope="module")
def server_url(embedded_server, tiny_model_dir) -> str:
    return embedded_server(tiny_model_dir)


def test_weight_updates_change_greedy_outputs_and_versions(server_url, tiny_model_dir, other_tiny_model_dir,
                                                           tmp_path):
    url = server_url
    model_a, model_b = hf_model(tiny_model_dir), hf_model(other_tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    cfg = RolloutConfig(group_size=2, max_new_tokens=NEW_TOKENS, temperature=0.0, dynamic_sampling=False)
    batch_problems = problems(3)
    prompts = PromptBuilder(tokenizer, system_prompt="Be brief.", instruction="Solve:")
    prompt_ids = [prompts.prompt_ids(p) for p in batch_problems]
    expected = {"a": [hf_greedy(model_a, ids) for ids in prompt_ids],
                "b": [hf_greedy(model_b, ids) for ids in prompt_ids]}
    assert expected["a"] != expected["b"], "the two tiny models must differ in their greedy outputs"

    async def scenario():
        async with SGLangClient(url, max_retries=0) as client:
            manager = RolloutManager(cfg, client, prompts)

            async def greedy_outputs(version: int, which: str):
                batch = await manager.rollout(iter(batch_problems), num_groups=3, temperature=0.0)
                assert len(batch.samples) == 6
                assert {s.weight_version for s in batch.samples} == {version}
                for sample in batch.samples:
                    index = int(sample.problem_id[1:])
                    assert sample.prompt_ids == prompt_ids[index]
                    assert sample.response_ids == expected[which][index], (which, version, sample.key)

            await greedy_outputs(0, "a")
            disk = make_weight_sync("disk", [url], directory=tmp_path / "sync", reference_model_dir=other_tiny_model_dir)
            await disk.update(buckets_of(model_b), version=1)
            await greedy_outputs(1, "b")
            tensor = make_weight_sync("tensor", [url], engine="embedded")
            await tensor.update(buckets_of(model_a), version=2)
            await greedy_outputs(2, "a")
            dist = make_weight_sync("distributed", [url], master_address="127.0.0.1", master_port=free_port(),
                                    backend="gloo")
            await dist.update(buckets_of(model_b), version=3)
            await greedy_outputs(3, "b")
            for sync in (disk, tensor, dist):
                await sync.close()
            assert sorted(p.name for p in (tmp_path / "sync").iterdir()) == ["weights_v000001"]

            wrong = make_weight_sync("tensor", [url], engine="embedded")
            with pytest.raises(EngineRequestError, match="model.no_such_layer.weight.*not a parameter"):
                await wrong.update([[("model.no_such_layer.weight", torch.zeros(2, 2))]], version=9)
            await wrong.close()
            assert (await client.get("/get_model_info"))["weight_version"] == "3"
            await greedy_outputs(3, "b")

    asyncio.run(scenario())


class CountingProblems:
    """An endless problem source that counts what the manager drew."""

    def __init__(self):
        self.drawn = 0

    def __iter__(self):
        return self

    def __next__(self):
        self.drawn += 1
        return problems(self.drawn, prefix="d")[-1]


async def parity_of_first_token(problem, sample):
    """A reward that differs within a group about as often as a coin does."""
    return float(sample.response_ids[0] % 2), {"verdict": "AC" if sample.response_ids[0] % 2 else "WA"}


def test_dynamic_sampling_keeps_only_groups_with_different_rewards(server_url, tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    cfg = RolloutConfig(group_size=3, max_new_tokens=4, over_sampling_factor=1.5, max_sampling_rounds=6)
    source = CountingProblems()

    async def scenario():
        async with SGLangClient(server_url) as client:
            manager = RolloutManager(cfg, client, PromptBuilder(tokenizer), parity_of_first_token)
            return await manager.rollout(source, num_groups=4, temperature=1.5)

    batch = asyncio.run(scenario())
    assert len(batch.groups) == 4 and batch.metrics["rollout/groups_short"] == 0
    assert all(len({s.reward for s in group}) > 1 for group in batch.groups)
    assert source.drawn >= 6, "the first round over-samples 4 groups by 1.5"
    keys = [s.key for s in batch.samples]
    assert len(keys) == len(set(keys)) == 12
    verdicts = batch.metrics["rollout/verdict_AC"] + batch.metrics["rollout/verdict_WA"]
    assert verdicts == 12


def test_responses_without_a_program_get_no_code_without_the_judge(server_url, tiny_model_dir):
    from judge.pool import JudgePool

    from rollout.rewards import JudgeReward

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    cfg = RolloutConfig(group_size=2, max_new_tokens=4, max_sampling_rounds=2, over_sampling_factor=1.0)
    source = CountingProblems()
    pool = JudgePool(workers=1)

    async def scenario():
        async with SGLangClient(server_url) as client:
            manager = RolloutManager(cfg, client, PromptBuilder(tokenizer), JudgeReward(pool))
            return await manager.rollout(source, num_groups=2, temperature=1.0)

    try:
        batch = asyncio.run(scenario())
        assert pool.zygote_pids == [], "nothing was sent to the judge"
    finally:
        pool.close()
    assert all(s.reward == 0.0 and s.verdict["verdict"] == "no_code" for s in batch.samples)
    # every group has equal rewards: two rounds drop them all, and the batch is filled with dropped groups
    assert source.drawn == 4 and len(batch.groups) == 2
    assert batch.metrics["rollout/groups_short"] == 2 and batch.metrics["rollout/sampling_rounds"] == 2
    assert batch.metrics["rollout/verdict_no_code"] == 4
