"""algo.routing_replay reaches the rollout side: the run config turns on rollout.return_routed_experts (which
SGLang engines launch with as --enable-return-routed-experts), the router chosen is one that forwards the
request field (sglang-router 0.3.2 drops it), and the RolloutManager's Samples carry the engine's routes."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp import web

from judge.problem import Problem, TestCase
from megatron_mc.config import load_config
from rollout.client import SGLangClient
from rollout.config import RolloutConfig
from rollout.embedded_engine import EmbeddedEngine
from rollout.embedded_server import EmbeddedServer
from rollout.manager import RolloutManager
from rollout.process import free_port
from rollout.routed_experts import decode
from rollout.router import resolve_router_kind
from tests.model.model_tiny import make_hf_model

PROBLEM = Problem("p1", "stdio", [TestCase("1", "1")])
CONFIGS = Path(__file__).resolve().parents[2] / "examples" / "configs"


def test_the_moe_config_asks_engines_and_router_for_routes():
    moe = load_config(CONFIGS / "qwen3_30b_a3b_moe.yaml")
    assert moe.algo.routing_replay and moe.rollout.return_routed_experts
    assert not load_config(CONFIGS / "tiny_cpu.yaml").rollout.return_routed_experts
    assert resolve_router_kind("auto", routed_experts=True) == "least_outstanding"
    with pytest.raises(ValueError, match="algo.routing_replay"):
        resolve_router_kind("sglang_router", routed_experts=True)


def test_manager_samples_carry_the_engines_routes(tmp_path):
    make_hf_model("qwen3_moe", str(tmp_path))

    async def sample():
        runner = web.AppRunner(EmbeddedServer(EmbeddedEngine(str(tmp_path))).app())
        await runner.setup()
        port = free_port("127.0.0.1")
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            async with SGLangClient(f"http://127.0.0.1:{port}", return_routed_experts=True) as client:
                manager = RolloutManager(RolloutConfig(max_new_tokens=5), client, prompts=None)
                return await manager.generate_sample(PROBLEM, [5, 6, 7], 0, 1.0, "t")
        finally:
            await runner.cleanup()

    s = asyncio.run(sample())
    assert s.problem_id == "p1"
    assert decode(s.routed_experts, 3 + len(s.response_ids) - 1, 4, 2, "sample").shape == (7, 4, 2)
