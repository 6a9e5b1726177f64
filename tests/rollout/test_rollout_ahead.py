"""The driver's rollout producer (megatron_mc/driver/rollout_ahead.py) against a real embedded engine:
batches run at most `ahead` before the trainer, each with the staleness bound of its step, and a rewind
(a checkpoint) puts the sampler back so that the batches produced again draw exactly the same problems."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

import aiohttp

from megatron_mc.config import RunConfig, TrainConfig
from megatron_mc.data.sampler import ProblemSampler
from megatron_mc.driver.problems import ProblemStream
from megatron_mc.driver.rollout_ahead import RolloutAhead
from megatron_mc.driver.temperature import FixedTemperature
from rollout.client import SGLangClient
from rollout.config import RolloutConfig
from rollout.embedded_engine import EmbeddedEngine
from rollout.manager import RolloutManager
from rollout.prompts import PromptBuilder

from conftest import build_tokenizer, in_process_server, problems

BATCH = 2  # problems per step


async def _until(condition, what: str, timeout_s: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.02)


def _producer(client: SGLangClient, ahead: int):
    """A RolloutAhead over 7 problems, BATCH a step, and its problem stream."""
    pool = problems(7)
    cfg = RolloutConfig(engine="embedded", group_size=2, max_new_tokens=4, dynamic_sampling=False)
    manager = RolloutManager(cfg, client, PromptBuilder(build_tokenizer(), "", ""))
    session = SimpleNamespace(cfg=RunConfig(train=TrainConfig(train_batch_size=BATCH, mini_batch_size=1)),
                              manager=manager)
    stream = ProblemStream(pool, ProblemSampler(len(pool), seed=3))
    return RolloutAhead(session, stream, FixedTemperature(1.0), ahead, last_step=5), stream


async def _scenario(model_dir, ahead: int):
    async with in_process_server(EmbeddedEngine(str(model_dir))) as url, \
            SGLangClient(url, max_retries=0) as client:
        ahead_of, stream = _producer(client, ahead)
        ahead_of.start(1)
        first = await ahead_of.take(1)
        position = lambda: stream.sampler.state_dict()["position"]  # noqa: E731
        await _until(lambda: position() == (1 + ahead) * BATCH, f"batch {1 + ahead} drawn ahead")
        await asyncio.sleep(0.5)  # time enough to run further, were it allowed to
        drawn_before_rewind = position()
        assert await ahead_of.rewind() == (2 if ahead else None)
        assert position() == BATCH  # only batch 1's problems stay drawn
        async with aiohttp.ClientSession() as http:  # the trainer's step 1 reached the engine
            await http.post(f"{url}/update_weight_version", json={"new_version": "1"})
        ahead_of.start(2)
        second = await ahead_of.take(2)
        await ahead_of.stop()
        return first, second, drawn_before_rewind


def _expected_ids(count: int) -> list[str]:
    pool = problems(7)
    return [pool[i].id for i in ProblemSampler(len(pool), seed=3).next_batch(count)]


def test_one_batch_ahead_and_a_rewind_replays_the_same_problems(tiny_model_dir):
    first, second, drawn = asyncio.run(_scenario(tiny_model_dir, ahead=1))
    expected = _expected_ids(2 * BATCH)
    assert drawn == 2 * BATCH  # batch 2 was drawn while the trainer held batch 1
    assert sorted(first.problem_ids) == sorted(expected[:BATCH]) and first.min_version == -1
    assert sorted(second.problem_ids) == sorted(expected[BATCH:]) and second.min_version == 0
    assert len(second.rollout.groups) == BATCH
    assert {s.weight_version for s in second.rollout.samples} == {1}  # produced again after the update


def test_synchronous_production_waits_for_the_trainer(tiny_model_dir):
    first, second, drawn = asyncio.run(_scenario(tiny_model_dir, ahead=0))
    assert drawn == BATCH  # nothing drawn for batch 2 before the trainer asked for it
    assert first.min_version == 0 and second.min_version == 1


async def _rewind_after_the_engine_went_away(model_dir):
    server = in_process_server(EmbeddedEngine(str(model_dir)))
    url = await server.__aenter__()
    async with SGLangClient(url, max_retries=0) as client:
        ahead_of, _ = _producer(client, ahead=1)
        ahead_of.start(1)
        await ahead_of.take(1)
        await server.__aexit__(None, None, None)  # the engine goes away while batch 2 is produced ahead
        await asyncio.sleep(1.0)
        try:
            await ahead_of.rewind()
        except Exception as failure:  # noqa: BLE001 - whatever stopped the producer
            return failure
    return None


def test_a_failed_producer_is_raised_at_the_next_rewind(tiny_model_dir):
    failure = asyncio.run(_rewind_after_the_engine_went_away(tiny_model_dir))
    assert failure is not None, "the rewind hid the producer's failure"
    assert "127.0.0.1" in str(failure), repr(failure)  # the client's error names the engine it could not reach
