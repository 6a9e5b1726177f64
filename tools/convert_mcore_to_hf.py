"""Convert a Megatron distributed checkpoint (from training or convert_hf_to_mcore.py) to HF safetensors.

    .venv/bin/python tools/convert_mcore_to_hf.py --mcore-dir DIR --hf-config-dir DIR --out DIR

--hf-config-dir is the original HF directory: its config.json must describe the architecture the
checkpoint holds; it and the tokenizer files are copied to --out beside the safetensors shards and
model.safetensors.index.json. Loads with --tp/--pp/--ep (default 1: one process) on local ranks.
"""
import argparse

from megatron_mc.parallel.config import ParallelConfig
from megatron_mc.parallel.launch import ensure_ranks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mcore-dir", required=True)
    parser.add_argument("--hf-config-dir", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--tp", type=int, default=1)
    parser.add_argument("--pp", type=int, default=1)
    parser.add_argument("--ep", type=int, default=1)
    parser.add_argument("--dtype", choices=["bfloat16", "float16", "float32"], default=None,
                        help="default: the dtype in the checkpoint's HF config")
    args = parser.parse_args()
    from megatron_mc.checkpoint.convert import check_architecture, mcore_to_hf
    from megatron_mc.models.registry import adapter_for_config

    adapter = adapter_for_config(check_architecture(args.mcore_dir, args.hf_config_dir))
    ensure_ranks(args.tp * args.pp * args.ep)
    from megatron_mc.parallel import state

    par = ParallelConfig(tp=args.tp, pp=args.pp, ep=args.ep,
                         sequence_parallel=args.tp > 1 and adapter.num_experts > 0)
    state.initialize(par)
    try:
        mcore_to_hf(args.mcore_dir, args.hf_config_dir, args.out, par, args.dtype)
    finally:
        state.destroy()


if __name__ == "__main__":
    main()
