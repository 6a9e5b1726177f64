"""Run metrics: JSONL / TensorBoard / W&B sinks, per-phase timers, terminal progress, `mc-plot`."""
