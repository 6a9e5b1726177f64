"""Bodies of the two-process gloo tests (spawned by test_algo_distributed.py): each rank writes what it
computed to a file, the test compares."""
import os

import torch
import torch.distributed as dist

from megatron_mc.algo import policy_loss, resolve_algo_config, vocab_parallel_logprobs_and_entropy, zigzag_split


def _init(rank, world_size, port):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)


def tensor_parallel_logprobs(rank, world_size, port, out_dir, dtypes):
    """Rank r gets vocab rows [r V / tp, (r + 1) V / tp) of the same full logits."""
    _init(rank, world_size, port)
    try:
        for dtype in dtypes:
            torch.manual_seed(0)
            logits = torch.randn(3, 11, 40, dtype=dtype) * 3
            targets = torch.randint(0, 40, (3, 11))
            weights = torch.randn(2, 3, 11, dtype=dtype)
            shard_size = 40 // world_size
            shard = logits[..., rank * shard_size:(rank + 1) * shard_size].clone().requires_grad_(True)
            logprobs, entropy = vocab_parallel_logprobs_and_entropy(shard, targets, 0.8, tp_group=dist.group.WORLD,
                                                                    chunk_size=4)
            (logprobs * weights[0] + entropy * weights[1]).sum().backward()
            torch.save({"logprobs": logprobs.detach(), "entropy": entropy.detach(), "grad": shard.grad},
                       os.path.join(out_dir, f"tp_{dtype}_{rank}.pt"))
    finally:
        dist.destroy_process_group()


def context_parallel_loss(rank, world_size, port, out_dir, scenarios):
    """Rank r gets the zig-zag part r of every sequence; the losses of the ranks must add up to CP=1's."""
    _init(rank, world_size, port)
    try:
        inputs = torch.load(os.path.join(out_dir, "inputs.pt"))
        for name, scenario in scenarios.items():
            config = resolve_algo_config(scenario["preset"], scenario["overrides"])
            logits = zigzag_split(inputs["logits"], world_size, rank).requires_grad_(True)

            def part(key):
                return zigzag_split(inputs[key], world_size, rank)

            logprobs, entropy = vocab_parallel_logprobs_and_entropy(logits, part("targets"), config.temperature,
                                                                    chunk_size=5)
            loss, _ = policy_loss(logprobs, part("old_logprobs"), inputs["advantages"], part("mask"), config=config,
                                  ref_logprobs=part("ref_logprobs"), entropy=entropy, cp_group=dist.group.WORLD)
            loss.backward()
            torch.save({"loss": loss.detach(), "grad": logits.grad}, os.path.join(out_dir, f"{name}_{rank}.pt"))
    finally:
        dist.destroy_process_group()
