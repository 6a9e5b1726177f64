"""Routing replay, rollout side: the embedded engine answers return_routed_experts as SGLang does
(meta_info["routed_experts"], base64 int32 [prompt + response - 1, layers, topk]) with the experts its
HF routers chose, and the client carries them into a Sample. Checked against the HF router's own top-k
recomputed over the whole sequence in one forward, for two prompts of different lengths generated
together (left padding, KV cache)."""
from __future__ import annotations

import asyncio

import pytest
import torch
from aiohttp import web

from rollout.client import EngineRequestError, SGLangClient, parse_generate_response
from rollout.embedded_engine import EmbeddedEngine
from rollout.embedded_server import EmbeddedServer
from rollout.process import free_port
from rollout.routed_experts import decode
from rollout.sample import Sample
from tests.model.model_tiny import make_hf_model

LAYERS, TOPK = 4, 2  # model_tiny's qwen3_moe


def router_choices(engine: EmbeddedEngine, tokens: list[int]) -> torch.Tensor:
    """[tokens, layers, topk] from one uncached forward over the sequence, read off the HF routers."""
    chosen = []
    hooks = [r.register_forward_hook(lambda m, i, out: chosen.append(out[-1])) for r in engine.routers]
    try:
        with torch.no_grad():
            engine.model(torch.tensor([tokens]))
    finally:
        for hook in hooks:
            hook.remove()
    return torch.stack(chosen, dim=1).to(torch.int32)


async def generate_through_server(engine: EmbeddedEngine, prompts: list[list[int]]):
    runner = web.AppRunner(EmbeddedServer(engine).app())
    await runner.setup()
    port = free_port("127.0.0.1")
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with SGLangClient(f"http://127.0.0.1:{port}", return_routed_experts=True) as client:
            params = {"temperature": 1.0, "max_new_tokens": 6, "ignore_eos": True}
            return await asyncio.gather(*(client.generate(p, dict(params, sampling_seed=i))
                                          for i, p in enumerate(prompts)))
    finally:
        await runner.cleanup()


def test_recorded_routes_equal_the_routers_choices_token_by_token(tmp_path):
    make_hf_model("qwen3_moe", str(tmp_path))
    engine = EmbeddedEngine(str(tmp_path), dtype="float32", device="cpu")
    prompts = [[5, 17, 33, 2, 90, 41, 7], [12, 8, 61]]
    outputs = asyncio.run(generate_through_server(engine, prompts))
    for prompt, out in zip(prompts, outputs):
        sequence = prompt + out.output_ids
        routes = decode(out.routed_experts, len(sequence) - 1, LAYERS, TOPK, "test")
        expected = router_choices(engine, sequence[:-1])
        # the top-k set per token (their order among equals is the kernel's)
        assert torch.equal(torch.from_numpy(routes.copy()).sort(-1).values, expected.sort(-1).values)
        sample = Sample("p", 0, prompt, out.output_ids, out.logprobs, out.finish_reason, 1.0, 0,
                        routed_experts=out.routed_experts)
        assert Sample.from_dict(sample.to_dict()).routed_experts == out.routed_experts
    with pytest.raises(ValueError, match="routed tokens"):
        Sample("p", 0, prompts[0], outputs[1].output_ids, outputs[1].logprobs, "length", 1.0, 0,
               routed_experts=outputs[1].routed_experts)


def test_routes_asked_for_but_missing_name_the_sglang_flag():
    body = {"output_ids": [3], "meta_info": {"finish_reason": {"type": "stop"},
                                             "output_token_logprobs": [[-0.1, 3, None]]}}
    with pytest.raises(EngineRequestError, match="--enable-return-routed-experts"):
        parse_generate_response(body, "r1", routed_experts=True)
