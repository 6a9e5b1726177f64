"""The gloo-group weight transport streams: each bucket is announced and broadcast before the next is drawn,
so buckets whose tensors share one reused buffer (megatron_mc.weights.iter_hf_buckets' contract) reach the
embedded engine intact, and the engine reports the new version only once every bucket is in."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import torch

from megatron_mc.data.tiny_default import prepare_tiny_default
from rollout.weight_sync import make_weight_sync

from scenarios import engine_greedy, hf_greedy, rl_batch

pytestmark = pytest.mark.distributed

TENSORS_PER_BUCKET = 3


def buckets_in_one_reused_buffer(model: torch.nn.Module):
    """Like iter_hf_buckets: every bucket's tensors are views of one buffer that the next bucket rewrites."""
    named = [(name, p.detach()) for name, p in model.named_parameters()]
    chunks = [named[i:i + TENSORS_PER_BUCKET] for i in range(0, len(named), TENSORS_PER_BUCKET)]
    buffer = torch.empty(max(sum(t.numel() for _, t in chunk) for chunk in chunks))
    for chunk in chunks:
        bucket, offset = [], 0
        for name, tensor in chunk:
            view = buffer[offset:offset + tensor.numel()].view(tensor.shape)
            view.copy_(tensor)
            bucket.append((name, view))
            offset += tensor.numel()
        yield bucket


@pytest.fixture(scope="module")
def engine_url(tmp_path_factory):
    from rollout.config import RolloutConfig
    from rollout.launch_args import server_command
    from rollout.process import free_port, start_process, stop_process, wait_healthy

    log = tmp_path_factory.mktemp("engine") / "engine.log"
    port = free_port()
    process = start_process(server_command(RolloutConfig(engine="embedded", dtype="float32"),
                                           prepare_tiny_default().hf_dir, "127.0.0.1", port), log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, timeout_s=120, log_path=log)
        yield url
    finally:
        stop_process(process)


def test_several_buckets_sharing_a_buffer_arrive_intact(engine_url, tmp_path):
    from transformers import AutoModelForCausalLM

    from rollout.process import free_port

    source = prepare_tiny_default().hf_dir
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32).eval()
    torch.manual_seed(7)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    new_dir = tmp_path / "new_policy"
    model.save_pretrained(new_dir)
    prompt = rl_batch().prompt_ids[0]
    expected = hf_greedy(new_dir, prompt)
    assert expected != hf_greedy(Path(source), prompt), "the perturbation must change greedy output"
    assert len(list(buckets_in_one_reused_buffer(model))) > 3

    async def push():
        sync = make_weight_sync("distributed", [engine_url], master_address="127.0.0.1", master_port=free_port(),
                                backend="gloo")
        try:
            await sync.update(buckets_in_one_reused_buffer(model), version=5)
        finally:
            await sync.close()

    asyncio.run(push())
    assert engine_greedy(engine_url, prompt) == (expected, "5")
