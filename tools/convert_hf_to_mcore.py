"""Convert an HF checkpoint into a Megatron distributed checkpoint sharded as asked.

    .venv/bin/python tools/convert_hf_to_mcore.py --hf-dir DIR --out DIR [--tp N] [--pp N] [--ep N]

Starts tp*pp*ep local ranks itself (gloo on CPU, NCCL on GPUs) unless launched by torchrun.
The saved checkpoint reshards on load, so any later layout can read it.
"""
import argparse

from megatron_mc.parallel.config import ParallelConfig
from megatron_mc.parallel.launch import ensure_ranks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hf-dir", required=True)
    parser.add_argument("--out", required=True, help="new or empty directory")
    parser.add_argument("--tp", type=int, default=1)
    parser.add_argument("--pp", type=int, default=1)
    parser.add_argument("--ep", type=int, default=1)
    parser.add_argument("--dtype", choices=["bfloat16", "float16", "float32"], default=None,
                        help="default: the checkpoint's own dtype")
    args = parser.parse_args()
    from megatron_mc.models.registry import adapter_for_dir

    adapter = adapter_for_dir(args.hf_dir)  # the architecture check, before any rank starts
    ensure_ranks(args.tp * args.pp * args.ep)
    from megatron_mc.checkpoint.convert import hf_to_mcore
    from megatron_mc.parallel import state

    par = ParallelConfig(tp=args.tp, pp=args.pp, ep=args.ep,
                         sequence_parallel=args.tp > 1 and adapter.num_experts > 0)
    state.initialize(par)
    try:
        hf_to_mcore(args.hf_dir, args.out, par, args.dtype)
    finally:
        state.destroy()


if __name__ == "__main__":
    main()
