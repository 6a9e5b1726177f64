"""`mc-sft --config FILE --data DATA.jsonl [--set KEY=VALUE ...] [--steps N] [--out DIR]`: supervised
fine-tuning of model.hf_dir on prompt/response (or chat messages) rows, exported as an HF checkpoint."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from megatron_mc.config import add_config_arguments, config_from_args
from megatron_mc.typed_config import ConfigError


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mc-sft", description=__doc__.split("\n\n")[0])
    add_config_arguments(parser)
    parser.add_argument("--data", required=True, help='JSONL rows {"prompt": ..., "response": ...} or {"messages": [...]}')
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps (default: train.max_steps)")
    parser.add_argument("--out", default=None, help="HF output folder (default: RUN_DIR/sft_hf)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        cfg = config_from_args(args)
    except ConfigError as e:
        print(f"mc-sft: {e}", file=sys.stderr)
        return 2
    if not cfg.model.hf_dir:
        print("mc-sft: model.hf_dir is empty; set it (--set model.hf_dir=PATH) to the HF checkpoint to fine-tune",
              file=sys.stderr)
        return 2
    from transformers import AutoTokenizer

    from megatron_mc.sft.data import DataError, load_examples

    try:
        examples = load_examples(args.data, AutoTokenizer.from_pretrained(cfg.model.hf_dir))
    except (DataError, FileNotFoundError) as e:
        print(f"mc-sft: {e}", file=sys.stderr)
        return 2
    from megatron_mc.sft.run import run_sft

    out = args.out or str(Path(cfg.run_dir) / "sft_hf")
    steps = args.steps or cfg.train.max_steps
    run_sft(cfg, cfg.model.hf_dir, examples, steps, out,
            on_step=lambda step, m: print(f"step {step}/{steps} loss {m['loss']:.4f} lr {m['lr']:.2e}", flush=True))
    print(f"mc-sft: wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
