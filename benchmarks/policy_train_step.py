"""One RL train step of the policy through the real trainer (TrainWorker: balanced token-budget
micro-batches, Megatron-Core's schedule, the MicroCoder-GRPO loss, backward, the optimizer step) on a
code-RL-shaped batch: tokens/s, MFU and peak memory, packed against padded micro-batches, SDPA against
Megatron-Core's DotProductAttention on the local layers.

    python benchmarks/policy_train_step.py --shapes qwen3-4b qwen3-8b-18l --out benchmarks/results/X.md
    python benchmarks/policy_train_step.py --shapes tiny          # CPU smoke check, seconds

Random weights of the named HF shape are written once as safetensors (no download) and loaded by the
trainer as a real checkpoint would be. The batch: --sequences responses, prompts log-normal (median
600 tokens), responses long-tailed (log-normal, median 1500) with a fifth truncated at the longest that
fits a micro-batch; one optimizer step per RL step, old log-probs given (no recomputation pass).

MFU = FLOPs / (step seconds * --peak-tflops), with FLOPs of the useful tokens only (padding is no work):
    6 * N * tokens + 6 * layers * (heads * head_dim) * sum_i L_i^2
N counts the transformer layers and the output layer (the embedding lookup is no matmul); the second
term is causal attention (QK^T and AV over the lower triangle), forward and backward.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import time
from pathlib import Path

# Qwen3 shapes from their HF config.json; 8B with 18 of its 36 layers: the whole model's fp32 Adam state,
# master weights and gradients (16 bytes a parameter) do not fit one 141 GB GPU beside its bf16 weights.
QWEN3 = dict(model_type="qwen3", architectures=["Qwen3ForCausalLM"], vocab_size=151936, head_dim=128,
             num_attention_heads=32, num_key_value_heads=8, rms_norm_eps=1e-6, rope_theta=1000000.0,
             max_position_embeddings=40960, hidden_act="silu", torch_dtype="bfloat16")
SHAPES = {
    "qwen3-4b": QWEN3 | dict(hidden_size=2560, intermediate_size=9728, num_hidden_layers=36, tie_word_embeddings=True),
    "qwen3-8b-18l": QWEN3 | dict(hidden_size=4096, intermediate_size=12288, num_hidden_layers=18,
                                 tie_word_embeddings=False),
    "tiny": QWEN3 | dict(vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2, head_dim=16,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                         max_position_embeddings=4096),
}
# (attention, packed) runs per shape; Megatron's DotProductAttention takes no packed sequences
RUNS = (("sdpa", True), ("sdpa", False), ("dot_product", False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", nargs="+", choices=sorted(SHAPES), default=["qwen3-4b"])
    parser.add_argument("--micro-batch-tokens", type=int, default=8192)
    parser.add_argument("--sequences", type=int, default=48)
    parser.add_argument("--steps", type=int, default=2, help="timed steps after one warm-up step")
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak (H100/H200 SXM: 989)")
    parser.add_argument("--work-dir", default="/tmp/policy_train_step")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    from megatron_mc.parallel.launch import ensure_ranks

    ensure_ranks(1)
    import torch

    cuda = torch.cuda.is_available()
    device_name = torch.cuda.get_device_name() if cuda else "CPU"
    rows = []
    for shape in args.shapes:
        hf_dir = write_random_checkpoint(shape, Path(args.work_dir) / shape, cuda)
        batch = code_rl_batch(args.sequences, args.micro_batch_tokens, SHAPES[shape]["vocab_size"])
        for attention in dict.fromkeys(a for a, _ in RUNS):
            rows += measure(shape, hf_dir, batch, attention, [p for a, p in RUNS if a == attention], args, cuda)
    report = format_report(device_name, args, rows)
    print(report)
    if args.out:
        Path(args.out).write_text(report)


def write_random_checkpoint(shape: str, directory: Path, cuda: bool) -> Path:
    """config.json and random bf16 safetensors (fp32 for the CPU smoke check) with the HF names and
    shapes of `shape`, written once."""
    import torch
    from safetensors.torch import save_file
    from transformers import AutoConfig, AutoModelForCausalLM

    config = dict(SHAPES[shape], torch_dtype="bfloat16" if cuda else "float32")
    if (directory / "model.safetensors.index.json").is_file():
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(directory))
    dtype, device = (torch.bfloat16, "cuda") if cuda else (torch.float32, "cpu")
    weight_map, shard, shard_bytes, shards = {}, {}, 0, 0

    def flush():
        nonlocal shard, shard_bytes, shards
        name = f"model-{shards:05d}.safetensors"
        save_file({k: v.cpu() for k, v in shard.items()}, str(directory / name))
        weight_map.update(dict.fromkeys(shard, name))
        shard, shard_bytes, shards = {}, 0, shards + 1

    for name, param in model.named_parameters():
        tensor = (torch.ones if "norm" in name else torch.randn)(param.shape, dtype=dtype, device=device)
        shard[name] = tensor if "norm" in name else tensor.mul_(0.02)
        shard_bytes += tensor.numel() * tensor.element_size()
        if shard_bytes > 4 * 2**30:
            flush()
    if shard:
        flush()
    index = {"metadata": {}, "weight_map": weight_map}
    (directory / "model.safetensors.index.json").write_text(json.dumps(index))
    return directory


def code_rl_batch(sequences: int, micro_batch_tokens: int, vocab: int):
    """Prompts log-normal around 600 tokens, responses long-tailed around 1500 with a fifth truncated at
    the longest response that fits a micro-batch, all scaled down for budgets under 8k; seeded."""
    import torch

    from megatron_mc.trainer.batch import TrainBatch

    gen = torch.Generator().manual_seed(0)
    scale = min(1.0, micro_batch_tokens / 8192)
    longest_prompt = max(int(2048 * scale), 2)
    longest_response = micro_batch_tokens - longest_prompt
    prompts = (600 * scale * torch.exp(0.5 * torch.randn(sequences, generator=gen))).clamp(2, longest_prompt)
    responses = (1500 * scale * torch.exp(0.9 * torch.randn(sequences, generator=gen))).clamp(1, longest_response)
    truncated = torch.rand(sequences, generator=gen) < 0.2
    responses = torch.where(truncated, torch.full_like(responses, longest_response), responses)
    prompt_ids = [torch.randint(0, vocab, (int(n),), generator=gen).tolist() for n in prompts]
    response_ids = [torch.randint(0, vocab, (int(n),), generator=gen).tolist() for n in responses]
    logprobs = [(-torch.rand(len(r), generator=gen)).tolist() for r in response_ids]
    advantages = torch.randn(sequences, generator=gen).tolist()
    return TrainBatch(prompt_ids, response_ids, advantages, rollout_logprobs=logprobs, temperature=1.0,
                      old_logprobs=logprobs)


def run_config(hf_dir: Path, attention: str, micro_batch_tokens: int, sequences: int, cuda: bool):
    from megatron_mc.config import config_from_dict

    return config_from_dict({
        "model": {"hf_dir": str(hf_dir), "dtype": "bfloat16" if cuda else "float32", "transformer_impl": "local",
                  "local_attention": attention},
        "parallel": {"distributed_optimizer": True},
        "cluster": {"gpus_per_node": 1},
        "train": {"train_batch_size": sequences, "mini_batch_size": sequences, "n_samples_per_prompt": 1,
                  "lr": 1e-6, "micro_batch_tokens": micro_batch_tokens, "max_steps": 1000},
        "algo": {"preset": "microcoder_grpo"},
    })


def measure(shape: str, hf_dir: Path, batch, attention: str, packings: list[bool], args, cuda: bool) -> list[dict]:
    """One TrainWorker with `attention`; per packing mode a warm-up step, then --steps timed ones."""
    import torch

    from megatron_mc.parallel import state
    from megatron_mc.trainer.worker import TrainWorker

    cfg = run_config(hf_dir, attention, args.micro_batch_tokens, len(batch), cuda)
    cfg.train.pack_sequences = packings[0]
    worker = TrainWorker(cfg, str(hf_dir))
    flops, useful = step_flops(worker, batch)
    rows = []
    try:
        for packed in packings:
            worker.cfg.train.pack_sequences = packed
            row = {"shape": shape, "attention": attention, "packed": packed, "params": parameters(worker),
                   "useful_tokens": useful}
            try:
                worker.train(batch)
                if cuda:
                    torch.cuda.synchronize()
                    torch.cuda.reset_peak_memory_stats()
                start = time.perf_counter()
                for _ in range(args.steps):
                    result = worker.train(batch)
                if cuda:
                    torch.cuda.synchronize()
                seconds = (time.perf_counter() - start) / args.steps
                row |= {"step_s": seconds, "tokens_per_s": useful / seconds,
                        "mfu": flops / seconds / (args.peak_tflops * 1e12),
                        "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan"),
                        "micro_batches": result["steps"][0]["micro_batches"]}
            except torch.OutOfMemoryError as e:
                row["error"] = f"out of memory: {str(e).splitlines()[0][:120]}"
            rows.append(row)
            gc.collect()
            if cuda:
                torch.cuda.empty_cache()
    finally:
        worker._loop.close()
        state.destroy(keep_process_group=True)
        del worker
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
    return rows


def parameters(worker) -> int:
    from megatron_mc.models.build import unwrap

    return sum(p.numel() for chunk in worker.model for p in unwrap(chunk).parameters())


def step_flops(worker, batch) -> tuple[float, int]:
    """(FLOPs of one step's useful work, useful tokens): see the module docstring."""
    from megatron_mc.models.build import unwrap

    gpt = unwrap(worker.model[0])
    config = gpt.config
    embedding = gpt.embedding.word_embeddings.weight.numel()
    matmul_params = parameters(worker) - embedding + (embedding if gpt.share_embeddings_and_output_weights else 0)
    lengths = [len(p) + len(r) for p, r in zip(batch.prompt_ids, batch.response_ids)]
    attention_width = config.num_attention_heads * config.kv_channels
    flops = 6 * matmul_params * sum(lengths) + 6 * config.num_layers * attention_width * sum(n * n for n in lengths)
    return float(flops), sum(lengths)


def format_report(device: str, args, rows: list[dict]) -> str:
    lines = [f"# One RL train step through TrainWorker on {device}", "",
             f"micro_batch_tokens {args.micro_batch_tokens}, {args.sequences} sequences (code-RL lengths, see "
             f"benchmarks/policy_train_step.py), 1 warm-up + {args.steps} timed steps, one rank, local layers "
             f"(no Transformer Engine), distributed optimizer; MFU against {args.peak_tflops:.0f} TFLOP/s, "
             "useful tokens only.", "",
             "| shape | params | attention | micro-batches | step s | tokens/s | MFU | peak GiB |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        layout = "packed" if r["packed"] else "padded"
        head = f"| {r['shape']} | {r['params'] / 1e9:.2f} B | {r['attention']} | {layout}"
        if "error" in r:
            lines.append(f"{head} | {r['error']} | | | |")
            continue
        lines.append(f"{head} x {r['micro_batches']} | {r['step_s']:.3f} | {r['tokens_per_s']:,.0f} | "
                     f"{100 * r['mfu']:.1f}% | {r['peak_gib']:.1f} |")
    lines += ["", "Against Megatron-Core's DotProductAttention on padded rows (the local attention and layout before "
              "SDPA and packing; the rest of the trainer, balanced micro-batches and the bf16 log-prob path "
              "included, is today's), same run:"]
    for shape in dict.fromkeys(r["shape"] for r in rows):
        done = {(r["attention"], r["packed"]): r for r in rows if r["shape"] == shape and "error" not in r}
        new, old = done.get(("sdpa", True)), done.get(("dot_product", False))
        if new and old:
            memory = f", peak memory x {new['peak_gib'] / old['peak_gib']:.2f}" if old["peak_gib"] > 0 else ""
            lines.append(f"- {shape}: tokens/s x {new['tokens_per_s'] / old['tokens_per_s']:.2f}{memory}")
        else:
            lines.append(f"- {shape}: no ratio ({'the old path failed' if new else 'the packed SDPA run failed'})")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    os.environ.setdefault("CUDA_DEVICE_MAX_CONNECTIONS", "1")
    main()
