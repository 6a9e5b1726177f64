"""Weight export speed: all weights of a Qwen3-1.7B-shaped policy (random init, bf16) held under TP=2,
exported as HF-named, HF-layout buckets (`iter_hf_buckets`), against a plain memory copy of the same
number of bytes in the same run, on every rank at once.

    .venv/bin/python benchmarks/export_weights.py [--shape qwen3-1.7b] [--bucket-mb 512] [--out FILE.md]

Starts its own two ranks (gloo on CPU, NCCL on GPUs). Target: export >= 0.5 x the copy rate.
Memory: about 2 GB per rank plus one bucket.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

SHAPES = {
    "qwen3-1.7b": dict(model_type="qwen3", architectures=["Qwen3ForCausalLM"], vocab_size=151936,
                       hidden_size=2048, intermediate_size=6144, num_hidden_layers=28,
                       num_attention_heads=16, num_key_value_heads=8, head_dim=128, rms_norm_eps=1e-6,
                       rope_theta=1000000.0, tie_word_embeddings=True, max_position_embeddings=40960,
                       hidden_act="silu", torch_dtype="bfloat16"),
    "tiny": dict(model_type="qwen3", architectures=["Qwen3ForCausalLM"], vocab_size=1000, hidden_size=64,
                 intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                 head_dim=16, rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=True,
                 max_position_embeddings=128, hidden_act="silu", torch_dtype="bfloat16"),
}
TP = 2


def _copy_rate(total_bytes: int, chunk_bytes: int, device) -> float:
    """GB/s of dst.copy_(src) over `total_bytes`, in chunks far larger than any cache."""
    import torch

    src = torch.ones(chunk_bytes, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    start = time.perf_counter()
    done = 0
    while done < total_bytes:
        n = min(chunk_bytes, total_bytes - done)
        dst[:n].copy_(src[:n])
        done += n
    if device.type == "cuda":
        torch.cuda.synchronize()
    return total_bytes / (time.perf_counter() - start) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="qwen3-1.7b")
    parser.add_argument("--bucket-mb", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    from megatron_mc.parallel.launch import ensure_ranks

    ensure_ranks(TP)
    import torch
    import torch.distributed as dist

    torch.set_num_threads(max(1, (os.cpu_count() or 2) // TP))
    from megatron_mc.models.build import build_model, load_adapter
    from megatron_mc.models.config import ModelConfig
    from megatron_mc.parallel import state
    from megatron_mc.parallel.config import ParallelConfig
    from megatron_mc.weights import iter_hf_buckets

    par = ParallelConfig(tp=TP)
    device = state.initialize(par)
    with tempfile.TemporaryDirectory() as hf_dir:
        (Path(hf_dir) / "config.json").write_text(json.dumps(SHAPES[args.shape]))
        cfg = ModelConfig(hf_dir=hf_dir, dtype="bfloat16")
        adapter = load_adapter(cfg)
        chunks = build_model(cfg, par, adapter)

    bucket_bytes = args.bucket_mb << 20

    def export() -> tuple[int, int, float]:
        dist.barrier()
        start = time.perf_counter()
        exported, tensors = 0, 0
        for bucket in iter_hf_buckets(chunks, adapter, bucket_bytes):
            exported += sum(t.numel() * t.element_size() for _, t in bucket)
            tensors += len(bucket)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return exported, tensors, time.perf_counter() - start

    # Weight sync exports every step: the first export touches its buffers, the next ones are timed,
    # as the copy is timed after a warm-up copy.
    export()
    runs = [export() for _ in range(args.repeats)]
    exported, tensors = runs[0][:2]
    export_s = min(r[2] for r in runs)
    dist.barrier()
    copy_gbs = _copy_rate(exported, bucket_bytes, device)
    export_gbs = exported / export_s / 1e9
    rates = [None] * dist.get_world_size()
    dist.all_gather_object(rates, (export_gbs, copy_gbs))
    if dist.get_rank() == 0:
        export_min = min(r[0] for r in rates)
        copy_max = max(r[1] for r in rates)
        ratio = export_min / copy_max
        report = (
            f"| shape | TP | device | HF tensors | GB exported per rank | export s | export GB/s | copy GB/s | ratio |\n"
            f"|---|---|---|---|---|---|---|---|---|\n"
            f"| {args.shape} | {TP} | {device.type}, {torch.get_num_threads()} threads/rank | {tensors} | "
            f"{exported / 1e9:.2f} | {export_s:.2f} | {export_min:.2f} | {copy_max:.2f} | {ratio:.2f} |\n"
            f"\nbucket {args.bucket_mb} MiB; export: best of {args.repeats} after one warm-up export, slowest rank; "
            f"copy: after one warm-up copy, fastest rank; "
            f"target ratio >= 0.5: {'met' if ratio >= 0.5 else 'NOT met'}\n"
        )
        print(report)
        if args.out:
            Path(args.out).write_text(report)
    state.destroy()


if __name__ == "__main__":
    main()
