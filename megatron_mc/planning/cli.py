"""`mc-plan --config FILE [--set k=v ...]`: print the dry-run plan (what `mc-train --dry-run` prints).
`mc-plan --search --config FILE --gpus N`: the best train layouts and placements on N GPUs instead."""
from __future__ import annotations

import argparse
import sys

from megatron_mc.config import add_config_arguments, config_from_args
from megatron_mc.data.sources import model_dir
from megatron_mc.planning.model_shape import load_model_shape
from megatron_mc.planning.plan import format_plan, make_plan
from megatron_mc.planning.step_time import Assumptions
from megatron_mc.typed_config import ConfigError


def _add_search_arguments(parser: argparse.ArgumentParser) -> None:
    d = Assumptions()
    group = parser.add_argument_group("layout search (--search)")
    group.add_argument("--search", action="store_true", help="rank the layouts and placements that fit on --gpus")
    group.add_argument("--gpus", type=int, help="GPUs in all (whole nodes of cluster.gpus_per_node beyond one)")
    group.add_argument("--gpu-memory", type=float, metavar="GIB", help="GiB per GPU (default: cluster.gpu_memory_gib)")
    group.add_argument("--top", type=int, default=5, help="layouts to print (default 5)")
    group.add_argument("--tflops", type=float, default=d.tflops, help=f"sustained TFLOP/s per GPU (default {d.tflops:g})")
    group.add_argument("--intra-node-gbs", type=float, default=d.intra_node_gbs,
                       help=f"NVLink GB/s per GPU (default {d.intra_node_gbs:g})")
    group.add_argument("--inter-node-gbs", type=float, default=d.inter_node_gbs,
                       help=f"inter-node GB/s per GPU (default {d.inter_node_gbs:g})")
    group.add_argument("--hbm-gbs", type=float, default=d.hbm_gbs,
                       help=f"achieved HBM GB/s in decode (default {d.hbm_gbs:g})")
    group.add_argument("--decode-tokens-per-s", type=float, default=None,
                       help="decode tokens/s of one engine (default: from the HBM roofline)")
    group.add_argument("--sequence-fill", type=float, default=d.sequence_fill,
                       help=f"mean sequence length / (max prompt + max new tokens) (default {d.sequence_fill:g})")
    group.add_argument("--async-rollout", action="store_true",
                       help="disaggregated engines generate the next step while the trainer trains")
    group.add_argument("--reserve-gib", type=float, default=d.reserve_gib,
                       help=f"GiB per GPU kept free for CUDA context and NCCL (default {d.reserve_gib:g})")


def _assumptions(args: argparse.Namespace) -> Assumptions:
    for name in ("tflops", "intra_node_gbs", "inter_node_gbs", "hbm_gbs", "sequence_fill", "top"):
        if getattr(args, name) <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be > 0, got {getattr(args, name)}")
    if args.decode_tokens_per_s is not None and args.decode_tokens_per_s <= 0:
        raise ValueError(f"--decode-tokens-per-s must be > 0, got {args.decode_tokens_per_s}")
    if not 0 < args.sequence_fill <= 1:
        raise ValueError(f"--sequence-fill must be in (0, 1], got {args.sequence_fill}")
    return Assumptions(tflops=args.tflops, intra_node_gbs=args.intra_node_gbs, inter_node_gbs=args.inter_node_gbs,
                       hbm_gbs=args.hbm_gbs, decode_tokens_per_s=args.decode_tokens_per_s,
                       sequence_fill=args.sequence_fill, async_rollout=args.async_rollout, reserve_gib=args.reserve_gib)


def _search(args: argparse.Namespace) -> str:
    from megatron_mc.planning.search import search
    from megatron_mc.planning.search_report import format_search

    if args.gpus is None:
        raise ValueError("--search needs --gpus N (the GPUs to lay the run out on)")
    cfg = config_from_args(args)
    memory = args.gpu_memory if args.gpu_memory is not None else cfg.cluster.gpu_memory_gib
    result = search(cfg, load_model_shape(model_dir(cfg)), args.gpus, memory, _assumptions(args))
    return format_search(result, args.top)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mc-plan", description="Placement, parallel sizes and per-GPU memory "
                                                                 "of a run config, without starting anything.")
    add_config_arguments(parser)
    _add_search_arguments(parser)
    args = parser.parse_args(argv)
    try:
        if not args.search and (args.gpus is not None or args.gpu_memory is not None):
            raise ValueError("--gpus and --gpu-memory apply to --search")
        print(_search(args) if args.search else format_plan(make_plan(config_from_args(args))))
    except (ConfigError, ValueError, FileNotFoundError) as e:
        print(f"mc-plan: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
