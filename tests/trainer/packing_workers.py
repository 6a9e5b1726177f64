"""Packed against padded micro-batches through the real trainer (TrainWorker on gloo ranks): the same
log-probs and the same RL step, for a dense and an MoE model under TP, PP, CP, EP and DP. Run by
test_packed_equals_padded.py through model_workers.launch.

    python packing_workers.py packing OUT_DIR   (with RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set)
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "model")]

# (name, family, parallel layout), all on four ranks
CASES = (
    ("dense_tp2_sp_pp2", "qwen3", dict(tp=2, sequence_parallel=True, pp=2)),
    ("dense_cp2_tp2_sp", "qwen3", dict(cp=2, tp=2, sequence_parallel=True)),
    ("moe_ep2_pp2_dp2", "qwen3_moe", dict(ep=2, pp=2)),
    ("moe_cp2_ep2_dp2", "qwen3_moe", dict(cp=2, ep=2, distributed_optimizer=True)),
)
# prompt and response lengths: long and short together, so packing and padding lay them out differently
SHAPES = ((5, 12), (9, 3), (3, 20), (7, 6), (4, 9), (11, 2))


def batch():
    from megatron_mc.trainer.batch import TrainBatch

    gen = torch.Generator().manual_seed(0)
    prompts = [torch.randint(5, 240, (p,), generator=gen).tolist() for p, _ in SHAPES]
    responses = [torch.randint(5, 240, (r,), generator=gen).tolist() for _, r in SHAPES]
    rollout = [(-torch.rand(r, generator=gen) * 3).tolist() for _, r in SHAPES]
    return TrainBatch(prompts, responses, advantages=[1.0, -0.5, 0.8, -1.2, 0.3, -0.7], rollout_logprobs=rollout,
                      temperature=0.7)


def scenario_packing(out: Path) -> dict:
    from model_tiny import make_hf_model
    from scenarios import run_config

    from megatron_mc.parallel import state
    from megatron_mc.trainer.worker import TrainWorker

    rank = int(os.environ["RANK"])
    result = {}
    for family in ("qwen3", "qwen3_moe"):
        make_hf_model(family, str(out / f"{family}-r{rank}"))
    for name, family, layout in CASES:
        for packed in (False, True):
            cfg = run_config(lr=1e-3, world=4, **layout)
            cfg.train.micro_batch_tokens = 48  # several micro-batches per rank either way
            cfg.train.pack_sequences = packed
            worker = TrainWorker(cfg, str(out / f"{family}-r{rank}"))
            try:
                rl = batch()
                logprobs = worker.compute_logprobs(rl)
                rl.old_logprobs = [[v + 0.05 * (i % 3 - 1) for i, v in enumerate(row)] for row in rl.rollout_logprobs]
                trained = worker.train(rl)
                after = worker.compute_logprobs(batch())
            finally:
                state.destroy(keep_process_group=True)
            key = f"{name}/{'packed' if packed else 'padded'}"
            result[f"{key}/logprobs/r{rank}"] = {str(i): row for i, row in logprobs.items()}
            result[f"{key}/after/r{rank}"] = {str(i): row for i, row in after.items()}
            result[f"{key}/train/r{rank}"] = trained
    return result


if __name__ == "__main__":
    out_dir = Path(sys.argv[2])
    measured = {"packing": scenario_packing}[sys.argv[1]](out_dir)
    (out_dir / f"result-{os.environ.get('RANK', '0')}.json").write_text(json.dumps(measured))
