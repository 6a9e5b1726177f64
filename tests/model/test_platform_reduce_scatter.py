"""The CPU layer's reduce-scatter (all-reduce plus a slice under gloo) inside Megatron's batching context
`torch.distributed._coalescing_manager`, where gloo defers every all-reduce to the end of the context:
the shard each rank keeps must still be the reduced one. End to end: one optimizer step of a tiny model
under DP=2 with the distributed optimizer gives the grad norm and parameters of DP=1 on the whole batch.

This file is also the worker:  python test_platform_reduce_scatter.py OUT_DIR  (RANK, WORLD_SIZE set).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

# About a minute on 2 cores: two Megatron worlds (1 and 2 ranks) each build, step and exit.
pytestmark = [pytest.mark.distributed, pytest.mark.slow]


def _run(world_size: int, out: Path) -> dict:
    from model_workers import REPO

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, str(out)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
            env=dict(os.environ, RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank),
                     MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="",
                     PYTHONPATH=f"{REPO}{os.pathsep}{HERE}"))
        for rank in range(world_size)
    ]
    try:
        logs = [p.communicate(timeout=300)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    failed = "".join(f"--- rank {rank} of {world_size} exited {p.returncode}:\n{log[-3000:]}\n"
                     for rank, (p, log) in enumerate(zip(procs, logs)) if p.returncode != 0)
    assert not failed, failed
    return json.loads((out / "result-0.json").read_text())


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    return {world: _run(world, tmp_path_factory.mktemp(f"world{world}")) for world in (1, 2)}


def test_reduce_scatter_inside_the_coalescing_manager_keeps_the_reduced_shard(measured):
    # Ranks hold [1, 1, 1, 1] and [2, 2, 2, 2]: each keeps half of the sum.
    assert measured[2]["coalesced_shards"] == [[3.0, 3.0], [3.0, 3.0]]
    assert measured[2]["plain_shards"] == [[3.0, 3.0], [3.0, 3.0]]


def test_distributed_optimizer_over_two_ranks_steps_like_one_rank(measured):
    one, two = measured[1], measured[2]
    assert two["dp"] == 2 and one["dp"] == 1
    assert abs(two["grad_norm"] - one["grad_norm"]) < 1e-4 * one["grad_norm"]
    assert abs(two["param_sum"] - one["param_sum"]) < 1e-3
    assert two["param_sum"] != two["param_sum_before"]


# ---------------------------------------------------------------------------------------------------
# Inside a worker process


def _shards(coalesced: bool) -> list[list[float]]:
    import torch
    import torch.distributed as dist

    rank, world = dist.get_rank(), dist.get_world_size()
    full = torch.full((2 * world,), float(rank + 1))
    shard = torch.zeros(2)
    if coalesced:
        with dist._coalescing_manager(async_ops=True) as cm:
            dist.reduce_scatter_tensor(shard, full, async_op=True)
        cm.wait()
    else:
        dist.reduce_scatter_tensor(shard, full)
    gathered = [torch.zeros(2) for _ in range(world)]
    dist.all_gather(gathered, shard)
    return [g.tolist() for g in gathered]


def _one_step(hf_dir: Path) -> dict:
    """One Adam step on 4 sequences: all of them on one rank, or two per rank with the distributed
    optimizer (sharded gradients reduced through reduce-scatter inside the coalescing manager)."""
    import torch
    import torch.distributed as dist
    from megatron.core import parallel_state as ps
    from megatron.core.distributed import finalize_model_grads
    from model_tiny import sample_tokens
    from model_workers import _build_and_load

    from megatron_mc.parallel import state
    from megatron_mc.parallel.config import ParallelConfig
    from megatron_mc.parallel.training import build_optimizer, wrap_ddp

    rank, world = dist.get_rank(), dist.get_world_size()
    par = ParallelConfig(distributed_optimizer=world > 1, overlap_grad_reduce=world > 1)
    state.initialize(par)
    chunks, _ = _build_and_load(hf_dir, par)
    model = wrap_ddp(chunks, par)
    optimizer = build_optimizer(model, par, lr=1e-2)
    tokens = torch.cat([sample_tokens(2, 17, seed=10 + i) for i in range(2)]).chunk(world)[rank]
    positions = torch.arange(17).unsqueeze(0).expand(tokens.shape[0], 17)
    param_sum_before = sum(p.detach().double().sum().item() for p in model[0].parameters())
    model[0].zero_grad_buffer()
    optimizer.zero_grad()
    loss = model[0](tokens[:, :-1], positions[:, :-1], attention_mask=None, labels=tokens[:, 1:]).mean()
    loss.backward()
    finalize_model_grads(model)
    _, grad_norm, _ = optimizer.step()
    return {"dp": ps.get_data_parallel_world_size(), "grad_norm": float(grad_norm),
            "param_sum_before": param_sum_before,
            "param_sum": sum(p.detach().double().sum().item() for p in model[0].parameters())}


if __name__ == "__main__":
    from model_tiny import make_hf_model

    from megatron_mc.parallel import state
    from megatron_mc.parallel.config import ParallelConfig

    # Saved before the CPU layer is active, as model_workers does.
    hf_dir = Path(sys.argv[1]) / f"qwen3-r{os.environ['RANK']}"
    make_hf_model("qwen3", str(hf_dir))
    state.initialize(ParallelConfig())
    import torch.distributed as dist

    result = {"coalesced_shards": _shards(True), "plain_shards": _shards(False)} if dist.get_world_size() > 1 else {}
    state.destroy(keep_process_group=True)
    result.update(_one_step(hf_dir))
    (hf_dir.parent / f"result-{os.environ['RANK']}.json").write_text(json.dumps(result))
