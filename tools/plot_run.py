"""Draw a run's main curves to PNG files (same as the `mc-plot` console script)."""
from megatron_mc.metrics.plot import main

if __name__ == "__main__":
    raise SystemExit(main())
