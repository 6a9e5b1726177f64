"""Print a run config's placement, parallel sizes and per-GPU memory estimate (same as `mc-plan`)."""
from megatron_mc.planning.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
