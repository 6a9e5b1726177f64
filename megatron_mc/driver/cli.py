"""`mc-train --config FILE [--set k=v ...] [--resume auto|PATH] [--dry-run]`: the RL training job.

--resume auto continues from the newest complete checkpoint under the run's checkpoints (a fresh start
when there is none); PATH names one step directory. --dry-run prints the placement, parallel sizes and
per-GPU memory plan and starts nothing. --rehearse runs the config's whole shape on this machine first
(simulated nodes and GPUs, a tiny model of its family, two steps, a kill, a resume): see
megatron_mc/rehearsal/run.py.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

from judge.problem import ProblemError
from megatron_mc.config import add_config_arguments, config_from_args
from megatron_mc.run_state import ResumeError
from megatron_mc.typed_config import ConfigError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mc-train", description=__doc__.split("\n\n")[0])
    add_config_arguments(parser)
    parser.add_argument("--resume", metavar="auto|PATH",
                        help="continue from the newest complete checkpoint (auto) or a step directory")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and start nothing")
    parser.add_argument("--rehearse", action="store_true",
                        help="run this (GPU) config's layout on simulated nodes with a tiny model of its family: "
                             "the check to pass before submitting the cluster job")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        cfg = config_from_args(args)
        if args.rehearse:
            from megatron_mc.rehearsal.run import rehearse

            return rehearse(args.config, args.overrides)
        if args.dry_run:
            from megatron_mc.planning.plan import format_plan, make_plan

            print(format_plan(make_plan(cfg)))
            return 0
        from megatron_mc.driver.run import train

        return train(cfg, args.resume)
    except (ConfigError, ResumeError, ProblemError, FileNotFoundError) as e:
        print(f"mc-train: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mc-train: interrupted; everything started was stopped (resume with --resume auto)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
