"""Padding waste and rank imbalance of the policy update's micro-batch layouts, on code-RL-like lengths.

    .venv/bin/python benchmarks/padding_waste.py [--prompts 32 64 128] [--seeds 0 1 2] [--budgets 20480 32768]
                                                  [--dp 8] [--segment-multiple 4] [--row-multiple 8] [--out FILE.md]

Lengths (seeded): P prompts x 8 samples. Prompt lengths log-normal (median 700, sigma 0.5, clipped to
200..4096), shared by a prompt's samples. Each prompt has a difficulty d ~ N(0, 0.5); a response is truncated
at the 16384-token maximum with probability 0.2, otherwise log-normal (median 2500 * e^d, sigma 0.8, clipped
to 16..16383). Samples arrive grouped by prompt, as the rollout returns them.

Layouts, over dp data-parallel ranks at a token budget per micro-batch that fits the longest sequence:
- before (the layout before issue 11, microbatches.py at commit ace4c83, whose `pack` and `schedule_length`
  the planner replaced, so `arrival_order_plan` restates them here): contiguous shards
  (microbatches.shard_indices), consecutive sequences grouped in arrival order while the right-padded
  [n, L] micro-batch fits the budget, every rank padded to the most any rank has;
- balanced, padded: balance.plan_micro_batches(packed=False);
- balanced, packed: balance.plan_micro_batches(packed=True), sequences back to back (THD).
Padded rows are a multiple of lcm(segment, row multiple) long (cp=2 and tp=2 with sequence parallelism
give 8); packed sequences are padded to the segment multiple (2 * cp) and rows to the row multiple.
Waste = tokens computed / useful tokens; imbalance = max / min tokens computed over the ranks; step cost =
dp * the slowest rank's tokens / useful tokens (the ranks wait for the slowest one).
Target for the packed layout: waste <= 1.10 and imbalance <= 1.05 in every configuration. CPU only, seconds.
"""
from __future__ import annotations

import argparse
import math
import random
import time
from pathlib import Path

from megatron_mc.trainer.balance import layout_cost, plan_micro_batches
from megatron_mc.trainer.balance import round_up
from megatron_mc.trainer.microbatches import shard_indices

SAMPLES_PER_PROMPT = 8
MAX_RESPONSE = 16384
TRUNCATED = 0.2
WASTE_TARGET, IMBALANCE_TARGET = 1.10, 1.05


def code_rl_samples(prompts: int, seed: int) -> list[tuple[int, int]]:
    """(prompt length, response length) per sample, a prompt's samples together."""
    rng = random.Random(seed)
    samples = []
    for _ in range(prompts):
        prompt = min(4096, max(200, int(rng.lognormvariate(math.log(700), 0.5))))
        median = 2500 * math.exp(rng.gauss(0, 0.5))
        for _ in range(SAMPLES_PER_PROMPT):
            truncated = rng.random() < TRUNCATED
            response = MAX_RESPONSE if truncated else min(MAX_RESPONSE - 1, max(16, int(rng.lognormvariate(
                math.log(median), 0.8))))
            samples.append((prompt, response))
    return samples


def arrival_order_plan(lengths: list[int], dp: int, budget: int, multiple: int) -> list[list[list[int]]]:
    plan = []
    for rank in range(dp):
        groups, current, longest = [], [], 0
        for i in shard_indices(len(lengths), rank, dp):
            if current and (len(current) + 1) * round_up(max(longest, lengths[i]), multiple) > budget:
                groups.append(current)
                current, longest = [], 0
            current.append(i)
            longest = max(longest, lengths[i])
        plan.append(groups + [current] if current else groups)
    count = max(1, max(map(len, plan)))
    return [groups + [[] for _ in range(count - len(groups))] for groups in plan]


def measure(lengths: list[int], dp: int, budget: int, segment: int, row: int) -> dict[str, dict]:
    """layout_cost of each layout, with the seconds its plan took."""
    padded_multiple = math.lcm(segment, row)
    planners = {
        "before (shards, arrival order, padded)": (
            lambda: arrival_order_plan(lengths, dp, budget, padded_multiple),
            dict(packed=False, row_multiple=padded_multiple)),
        "balanced, padded": (
            lambda: plan_micro_batches(lengths, dp, budget, packed=False, row_multiple=padded_multiple),
            dict(packed=False, row_multiple=padded_multiple)),
        "balanced, packed": (
            lambda: plan_micro_batches(lengths, dp, budget, packed=True, segment_multiple=segment, row_multiple=row),
            dict(packed=True, segment_multiple=segment, row_multiple=row)),
    }
    costs = {}
    for name, (plan, model) in planners.items():
        start = time.perf_counter()
        layout = plan()
        costs[name] = layout_cost(lengths, layout, **model) | dict(plan_seconds=time.perf_counter() - start)
    return costs


def report(args, runs: list[tuple]) -> str:
    prompts, seed, budget, lengths, truncated, first = next((run for run in runs if run[0] == 64), runs[0])
    lines = [
        "# Padding waste and rank imbalance of micro-batch layouts (machine: CPU; pure arithmetic, no model)",
        "",
        f"Lengths: {SAMPLES_PER_PROMPT} samples per prompt, prompts log-normal (median 700, sigma 0.5, 200..4096), "
        f"responses truncated at {MAX_RESPONSE} with probability {TRUNCATED}, otherwise log-normal (median 2500 * "
        f"e^d per prompt, d ~ N(0, 0.5), sigma 0.8); dp = {args.dp}; packed: segment multiple "
        f"{args.segment_multiple}, row multiple {args.row_multiple}; padded rows a multiple of "
        f"{math.lcm(args.segment_multiple, args.row_multiple)}.",
        "",
        f"## {prompts} prompts x {SAMPLES_PER_PROMPT} = {len(lengths)} sequences, seed {seed}, budget {budget} "
        f"tokens per micro-batch",
        "",
        f"{sum(lengths)} useful tokens, median sequence {sorted(lengths)[len(lengths) // 2]}, longest {max(lengths)}, "
        f"{truncated} ({truncated / len(lengths):.0%}) at the maximum response length; fewest micro-batches per "
        f"rank any layout can have: {math.ceil(sum(lengths) / args.dp / budget)}",
        "",
        "| layout | waste (computed / useful) | imbalance (max / min rank) | micro-batches per rank "
        "| step cost (dp x slowest rank / useful) |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {name} | {c['waste']:.4f} | {c['imbalance']:.4f} | {c['micro_batches']} | "
              f"{args.dp * max(c['computed_per_rank']) / c['useful']:.4f} |" for name, c in first.items()]
    lines += ["", "Step cost: every rank waits for the slowest at the gradient reduction, so the step takes as long as "
              "dp ranks each computing the slowest rank's tokens."]
    names = list(first)
    lines += ["", "## Every configuration (waste / imbalance / micro-batches per rank)", "",
              "| prompts | seed | budget | " + " | ".join(names) + " |", "|---|---|---|" + "---|" * len(names)]
    for prompts, seed, budget, _, _, costs in runs:
        lines.append(f"| {prompts} | {seed} | {budget} | " + " | ".join(
            f"{c['waste']:.3f} / {c['imbalance']:.3f} / {c['micro_batches']}" for c in costs.values()) + " |")
    packed = [costs["balanced, packed"] for *_, costs in runs]
    worst_waste, worst_imbalance = max(c["waste"] for c in packed), max(c["imbalance"] for c in packed)
    met = worst_waste <= WASTE_TARGET and worst_imbalance <= IMBALANCE_TARGET
    _, _, _, lengths, _, largest = max(runs, key=lambda run: len(run[3]))
    lines += ["", f"Target for the packed layout (waste <= {WASTE_TARGET}, imbalance <= {IMBALANCE_TARGET}) in all "
              f"{len(runs)} configurations: {'met' if met else 'NOT met'} (worst waste {worst_waste:.3f}, "
              f"worst imbalance {worst_imbalance:.3f}).",
              "", f"Planning time for {len(lengths)} sequences (pure Python; every rank computes the same plan): "
              + ", ".join(f"{name} {c['plan_seconds'] * 1000:.0f} ms" for name, c in largest.items()) + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budgets", type=int, nargs="+", default=[20480, 32768])
    parser.add_argument("--dp", type=int, default=8)
    parser.add_argument("--segment-multiple", type=int, default=4)
    parser.add_argument("--row-multiple", type=int, default=8)
    parser.add_argument("--out", default="benchmarks/results/padding_waste_cpu.md")
    args = parser.parse_args()

    runs = []
    for prompts in args.prompts:
        for seed in args.seeds:
            samples = code_rl_samples(prompts, seed)
            lengths = [prompt + response for prompt, response in samples]
            truncated = sum(response == MAX_RESPONSE for _, response in samples)
            for budget in args.budgets:
                runs.append((prompts, seed, budget, lengths, truncated,
                             measure(lengths, args.dp, budget, args.segment_multiple, args.row_multiple)))
    text = report(args, runs)
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
