"""Embedded engine: tokens/s of one batch of N requests against the same N requests one at a time.

Run: .venv/bin/python benchmarks/rollout_embedded_batching.py [--model-path DIR] [--requests 16] [--threads 1]
Without --model-path a random tiny Qwen3 is built in a temp dir. Prints the ratio batched / sequential;
on 2 CPU cores with the tiny model expect well above 1 (one forward per step serves every request).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch

from rollout.embedded_engine import EmbeddedEngine, GenerationRequest


def tiny_model(directory: str) -> str:
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(0)
    config = Qwen3Config(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=16, eos_token_id=255)
    Qwen3ForCausalLM(config).save_pretrained(directory)
    return directory


def requests(count: int, new_tokens: int) -> list[GenerationRequest]:
    return [GenerationRequest(rid=str(i), input_ids=list(range(1, 20 + i)), max_new_tokens=new_tokens,
                              temperature=1.0, ignore_eos=True, seed=i) for i in range(count)]


def tokens_per_s(engine: EmbeddedEngine, batches: list[list[GenerationRequest]]) -> float:
    start = time.perf_counter()
    tokens = sum(len(r.output_ids) for batch in batches for r in engine.generate(batch))
    return tokens / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-path")
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        engine = EmbeddedEngine(args.model_path or tiny_model(tmp), dtype="float32")
        engine.generate(requests(2, 4))  # warm-up
        sequential = tokens_per_s(engine, [[r] for r in requests(args.requests, args.new_tokens)])
        batched = tokens_per_s(engine, [requests(args.requests, args.new_tokens)])
    print(json.dumps({"requests": args.requests, "new_tokens": args.new_tokens,
                      "sequential_tokens_per_s": round(sequential, 1), "batched_tokens_per_s": round(batched, 1),
                      "batched_over_sequential": round(batched / sequential, 2)}))


if __name__ == "__main__":
    main()
