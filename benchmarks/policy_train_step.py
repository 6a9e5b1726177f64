"""Forward + backward + optimizer step of the policy on Megatron-Core: tokens/s, peak memory and MFU.

    .venv/bin/python benchmarks/policy_train_step.py [--shape qwen2.5-0.5b] [--seq 2048] [--mbs 4]
        [--steps 10] [--dtype bfloat16] [--peak-tflops 989] [--out FILE.md]

A random-init model with the shapes of a known HF model (no download), one rank, Megatron-Core DDP and
its optimizer, right-padded batches of random tokens. MFU counts 6 * parameters + 12 * layers * hidden
* seq FLOPs per token (matmuls and attention scores, forward and backward) against --peak-tflops (the
device's dense bf16 peak; 989 for an H100 SXM). Meant for a CUDA device; runs on CPU for a smoke check.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

SHAPES = {
    "qwen2.5-0.5b": dict(model_type="qwen2", architectures=["Qwen2ForCausalLM"], vocab_size=151936,
                         hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                         num_attention_heads=14, num_key_value_heads=2, rms_norm_eps=1e-6,
                         rope_theta=1000000.0, tie_word_embeddings=True, max_position_embeddings=32768,
                         hidden_act="silu", torch_dtype="bfloat16"),
    "tiny": dict(model_type="qwen2", architectures=["Qwen2ForCausalLM"], vocab_size=1000, hidden_size=64,
                 intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                 rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=True,
                 max_position_embeddings=4096, hidden_act="silu", torch_dtype="float32"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="qwen2.5-0.5b")
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--mbs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    from megatron_mc.parallel.launch import ensure_ranks

    ensure_ranks(1)
    import torch

    from megatron_mc.models.build import build_model, unwrap
    from megatron_mc.models.config import ModelConfig
    from megatron_mc.parallel import state
    from megatron_mc.parallel.config import ParallelConfig
    from megatron_mc.parallel.training import build_optimizer, wrap_ddp

    par = ParallelConfig(distributed_optimizer=True)
    device = state.initialize(par)
    with tempfile.TemporaryDirectory() as hf_dir:
        (Path(hf_dir) / "config.json").write_text(json.dumps(SHAPES[args.shape]))
        cfg = ModelConfig(hf_dir=hf_dir, dtype=args.dtype)
        chunks = build_model(cfg, par)
    model = wrap_ddp(chunks, par)
    optimizer = build_optimizer(model, par, lr=1e-5)
    gpt = unwrap(model[0])
    params = sum(p.numel() for p in gpt.parameters())
    config = gpt.config
    flops_per_token = 6 * params + 12 * config.num_layers * config.hidden_size * args.seq

    vocab = SHAPES[args.shape]["vocab_size"]
    tokens = torch.randint(0, vocab, (args.mbs, args.seq + 1), device=device)
    inputs, labels = tokens[:, :-1], tokens[:, 1:]
    positions = torch.arange(args.seq, device=device).unsqueeze(0).expand_as(inputs)

    def step() -> float:
        for m in model:
            m.zero_grad_buffer()
        optimizer.zero_grad()
        loss = model[0](inputs, positions, attention_mask=None, labels=labels).float().mean()
        loss.backward()
        for m in model:
            m.finish_grad_sync()
        optimizer.step()
        return loss.item()

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(args.warmup):
        step()
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    losses = [step() for _ in range(args.steps)]
    sync()
    elapsed = time.perf_counter() - start
    tokens_per_s = args.steps * args.mbs * args.seq / elapsed
    peak_gib = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    mfu = tokens_per_s * flops_per_token / (args.peak_tflops * 1e12)
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    report = (
        f"| device | shape | params | dtype | seq x mbs | step s | tokens/s | peak GiB | MFU |\n"
        f"|---|---|---|---|---|---|---|---|---|\n"
        f"| {name} | {args.shape} | {params / 1e6:.0f} M | {args.dtype} | {args.seq} x {args.mbs} | "
        f"{elapsed / args.steps:.3f} | {tokens_per_s:,.0f} | {peak_gib:.1f} | {100 * mfu:.1f}% |\n"
        f"\nlosses: first {losses[0]:.4f}, last {losses[-1]:.4f} (random tokens; only finiteness matters)\n"
    )
    print(report)
    if args.out:
        Path(args.out).write_text(report)
    state.destroy()


if __name__ == "__main__":
    os.environ.setdefault("CUDA_DEVICE_MAX_CONNECTIONS", "1")
    main()
