"""`mc-plan --config FILE [--set k=v ...]`: print the dry-run plan (what `mc-train --dry-run` prints)."""
from __future__ import annotations

import argparse
import sys

from megatron_mc.config import add_config_arguments, config_from_args
from megatron_mc.planning.plan import format_plan, make_plan
from megatron_mc.typed_config import ConfigError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mc-plan", description="Placement, parallel sizes and per-GPU memory "
                                                                 "of a run config, without starting anything.")
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    try:
        print(format_plan(make_plan(config_from_args(args))))
    except (ConfigError, ValueError, FileNotFoundError) as e:
        print(f"mc-plan: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
