"""Body of the two-process gloo tests (spawned once by test_algo_distributed.py): each rank writes what it
computed to files, the tests compare."""
import os

import torch
import torch.distributed as dist

from megatron_mc.algo import policy_loss, resolve_algo_config, vocab_parallel_logprobs_and_entropy, zigzag_split
from megatron_mc.algo.context_parallel import metric_values, reduce_metrics


def run_checks(rank, world_size, port, out_dir, tp_dtypes, cp_scenarios):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        for dtype in tp_dtypes:
            tensor_parallel_logprobs(rank, world_size, out_dir, dtype)
        context_parallel_losses(rank, world_size, out_dir, cp_scenarios)
    finally:
        dist.destroy_process_group()


def tensor_parallel_logprobs(rank, world_size, out_dir, dtype):
    """Rank r gets vocab rows [r V / tp, (r + 1) V / tp) of the same full logits."""
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


def context_parallel_losses(rank, world_size, out_dir, scenarios):
    """Rank r gets the zig-zag part r of every sequence; the losses of the ranks must add up to CP=1's."""
    inputs = torch.load(os.path.join(out_dir, "cp_inputs.pt"))

    def part(key):
        return zigzag_split(inputs[key], world_size, rank)

    for name, scenario in scenarios.items():
        config = resolve_algo_config(scenario["preset"], scenario["overrides"])
        logits = part("logits").requires_grad_(True)
        logprobs, entropy = vocab_parallel_logprobs_and_entropy(logits, part("targets"), config.temperature,
                                                                chunk_size=5)
        loss, metrics = policy_loss(logprobs, part("old_logprobs"), inputs["advantages"], part("mask"),
                                    config=config, ref_logprobs=part("ref_logprobs"), entropy=entropy,
                                    cp_group=dist.group.WORLD)
        loss.backward()
        reduced = reduce_metrics(metrics, int(part("mask").sum()), dist.group.WORLD)
        torch.save({"loss": loss.detach(), "grad": logits.grad, "metrics": metric_values(reduced)},
                   os.path.join(out_dir, f"{name}_{rank}.pt"))
    # every response token on the other rank: this rank's part holds none
    config = resolve_algo_config("microcoder_grpo", {})
    logprobs, _ = vocab_parallel_logprobs_and_entropy(part("logits"), part("targets"), config.temperature)
    _, metrics = policy_loss(logprobs, part("old_logprobs_below"), inputs["advantages"], part("mask_one_rank"),
                             config=config, cp_group=dist.group.WORLD)
    reduced = reduce_metrics(metrics, int(part("mask_one_rank").sum()), dist.group.WORLD)
    torch.save({"metrics": metric_values(reduced)}, os.path.join(out_dir, f"one_rank_{rank}.pt"))
