"""Peak memory of log-prob + entropy, forward and backward, chunked against naive, in one run.

Each method runs in a fresh process on the same seeded fp32 logits [tokens x vocab] (default 8192 x
151936, 5 GB): its peak is the rise of the process's peak RSS (getrusage) over its RSS once the logits
exist, so it counts what the computation allocates beyond its input. Methods:
  naive                   log_softmax over the whole vocabulary, entropy from its exp (what one writes first)
  chunked                 vocab_parallel_logprobs_and_entropy, gradient in a new tensor
  chunked_grad_in_logits  the same, gradient written into the logits' storage (as Megatron's fused
                          cross entropy does): nothing of [tokens x vocab] is allocated at all
Values and full gradients are compared against naive (gradients through files on disk, so the parent
never holds two at once), and values also against an fp64 computation (chunked, forward only), since
naive's own fp32 entropy is off by a few 1e-5. Target: a chunked peak at most 1/8 of naive's; values
equal to naive's to 1e-5 relative (|a - b| <= 1e-5 max(1, |b|); log-probs and entropies are ~10-25
here) and to the fp64 values to 1e-5 absolute.

    python benchmarks/logprob_memory.py [--tokens 8192 --vocab 151936 --chunk-size 512]

Needs about 6x the logits' size in free memory for the naive process (about 30 GB at the default size)
and 3x on disk.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import torch

METHODS = ("naive", "chunked", "chunked_grad_in_logits")
TARGET_RATIO = 1 / 8
TARGET_VALUE_DIFF = 1e-5


def naive(logits: torch.Tensor, targets: torch.Tensor, temperature: float, chunk_size: int):
    log_p = torch.log_softmax(logits / temperature, dim=-1)
    return log_p.gather(-1, targets[:, None]).squeeze(-1), -(log_p.exp() * log_p).sum(-1)


def chunked(grad_in_logits: bool):
    from megatron_mc.algo.logprobs import vocab_parallel_logprobs_and_entropy

    def run(logits: torch.Tensor, targets: torch.Tensor, temperature: float, chunk_size: int):
        return vocab_parallel_logprobs_and_entropy(logits, targets, temperature, chunk_size=chunk_size,
                                                   grad_in_logits=grad_in_logits)
    return run


IMPLEMENTATIONS = {
    "naive": lambda: naive,
    "chunked": lambda: chunked(grad_in_logits=False),
    "chunked_grad_in_logits": lambda: chunked(grad_in_logits=True),
}


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def seeded_inputs(args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    # filled in place, row block by row block, so that setting up allocates nothing beyond the logits
    logits = torch.empty(args.tokens, args.vocab)
    for start in range(0, args.tokens, 256):
        logits[start:start + 256].normal_(0.0, 2.0, generator=generator)
    targets = torch.randint(0, args.vocab, (args.tokens,), generator=generator)
    weights = torch.randn(2, args.tokens, generator=generator)
    return logits, targets, weights


@torch.no_grad()
def fp64_reference(args: argparse.Namespace) -> None:
    from megatron_mc.algo.logprobs import vocab_parallel_logprobs_and_entropy

    logits, targets, _ = seeded_inputs(args)
    parts = [vocab_parallel_logprobs_and_entropy(logits[rows].double(), targets[rows], args.temperature)
             for rows in (slice(i, i + args.chunk_size) for i in range(0, args.tokens, args.chunk_size))]
    torch.save({"logprobs": torch.cat([p[0] for p in parts]), "entropy": torch.cat([p[1] for p in parts])},
               Path(args.out) / "fp64_reference.pt")


def worker(args: argparse.Namespace) -> None:
    implementation = IMPLEMENTATIONS[args.worker]()
    logits, targets, weights = seeded_inputs(args)
    logits.requires_grad_(True)
    baseline = psutil.Process().memory_info().rss
    peak_before = peak_rss_bytes()

    started = time.perf_counter()
    logprobs, entropy = implementation(logits, targets, args.temperature, args.chunk_size)
    (logprobs * weights[0] + entropy * weights[1]).sum().backward()
    seconds = time.perf_counter() - started
    peak = peak_rss_bytes()

    out = Path(args.out)
    torch.save({"logprobs": logprobs.detach(), "entropy": entropy.detach()}, out / f"{args.worker}.pt")
    logits.grad.numpy().tofile(out / f"{args.worker}.grad")
    (out / f"{args.worker}.json").write_text(json.dumps({
        "peak_delta_bytes": peak - baseline, "setup_overshoot_bytes": max(0, peak_before - baseline),
        "seconds": seconds}))


def max_abs_grad_diff(a: Path, b: Path, vocab: int, rows_per_block: int = 512) -> float:
    first = np.memmap(a, dtype=np.float32, mode="r").reshape(-1, vocab)
    second = np.memmap(b, dtype=np.float32, mode="r").reshape(-1, vocab)
    return max(float(np.abs(first[i:i + rows_per_block] - second[i:i + rows_per_block]).max())
               for i in range(0, first.shape[0], rows_per_block))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=8192)
    parser.add_argument("--vocab", type=int, default=151936)
    parser.add_argument("--chunk-size", type=int, default=512)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--worker", choices=METHODS + ("fp64_reference",), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        (fp64_reference if args.worker == "fp64_reference" else worker)(args)
        return

    with tempfile.TemporaryDirectory(prefix="logprob_memory_") as tmp:
        results = {}
        for method in ("fp64_reference",) + METHODS:
            subprocess.run([sys.executable, __file__, "--worker", method, "--out", tmp, "--tokens", str(args.tokens),
                            "--vocab", str(args.vocab), "--chunk-size", str(args.chunk_size),
                            "--temperature", str(args.temperature)], check=True)
            if method != "fp64_reference":
                results[method] = json.loads((Path(tmp) / f"{method}.json").read_text())
        report(results, Path(tmp), args)


def value_diffs(values: dict, reference: dict) -> tuple[float, float]:
    """(max absolute, max relative to max(1, |reference|)) difference over log-probs and entropies."""
    diffs = [(values[k] - reference[k].to(values[k].dtype)).abs() for k in ("logprobs", "entropy")]
    scales = [reference[k].abs().clamp(min=1.0).to(values[k].dtype) for k in ("logprobs", "entropy")]
    return (max(float(d.max()) for d in diffs), max(float((d / s).max()) for d, s in zip(diffs, scales)))


def report(results: dict, tmp: Path, args: argparse.Namespace) -> None:
    gib = 2 ** 30
    logits_gib = args.tokens * args.vocab * 4 / gib
    print(f"log-prob + entropy forward+backward, {args.tokens} tokens x vocab {args.vocab} fp32 "
          f"(logits {logits_gib:.2f} GiB), chunk {args.chunk_size}, T={args.temperature}, "
          f"{torch.get_num_threads()} threads")
    naive_values = torch.load(tmp / "naive.pt")
    exact = torch.load(tmp / "fp64_reference.pt")
    naive_peak = results["naive"]["peak_delta_bytes"]
    values_ok = True
    for method in METHODS:
        result = results[method]
        values = torch.load(tmp / f"{method}.pt")
        error, _ = value_diffs(values, exact)
        print(f"  {method:23s} peak +{result['peak_delta_bytes'] / gib:7.3f} GiB  {result['seconds']:7.2f} s  "
              f"max|value - fp64| {error:.2e}")
        if result["setup_overshoot_bytes"] > 0.01 * naive_peak:
            print(f"    setup overshoot {result['setup_overshoot_bytes'] / gib:.3f} GiB: this peak is understated")
        if method == "naive":
            continue
        ratio = result["peak_delta_bytes"] / naive_peak
        absolute, relative = value_diffs(values, naive_values)
        grad_diff = max_abs_grad_diff(tmp / f"{method}.grad", tmp / "naive.grad", args.vocab)
        print(f"    vs naive: peak ratio {ratio:.4f} (1/{1 / ratio:.1f}); max|value diff| {absolute:.2e} "
              f"(relative {relative:.2e}); max|grad diff| {grad_diff:.2e}")
        values_ok &= relative <= TARGET_VALUE_DIFF and error <= TARGET_VALUE_DIFF
    best = min(results[m]["peak_delta_bytes"] for m in METHODS if m != "naive") / naive_peak
    met = values_ok and best <= TARGET_RATIO
    print(f"target: a chunked peak <= 1/8 of naive's (best {best:.4f}), values within {TARGET_VALUE_DIFF:g}: "
          f"{'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
