"""run_sft: a few hundred optimizer steps of supervised fine-tuning on the Megatron trainer, then an HF export."""
from __future__ import annotations

import dataclasses
import os
import random
from pathlib import Path
from typing import Callable, Optional

from megatron_mc.config import RunConfig
from megatron_mc.sft.data import Example
from megatron_mc.trainer.batch import TrainBatch
from rollout.local_ray import init_local_ray


def sft_config(cfg: RunConfig, steps: int) -> RunConfig:
    """One optimizer step per SFT step (train_batch_size examples each) and the LR schedule over `steps`."""
    train = dataclasses.replace(cfg.train, max_steps=steps, mini_batch_size=cfg.train.train_batch_size)
    return dataclasses.replace(cfg, train=train)


def batches(examples: list[Example], batch_size: int, steps: int, seed: int):
    """`steps` batches drawn from shuffled passes over the examples."""
    rng = random.Random(seed)
    order: list[int] = []
    for _ in range(steps):
        while len(order) < batch_size:
            epoch = list(range(len(examples)))
            rng.shuffle(epoch)
            order += epoch
        chosen, order = order[:batch_size], order[batch_size:]
        yield TrainBatch.for_sft([examples[i][0] for i in chosen], [examples[i][1] for i in chosen])


def run_sft(cfg: RunConfig, hf_dir: str, examples: list[Example], steps: int, out_dir: str,
            on_step: Optional[Callable[[int, dict], None]] = None) -> list[dict]:
    """Fine-tune the HF checkpoint in hf_dir on `examples` for `steps` optimizer steps of
    cfg.train.train_batch_size examples and export the result (weights, config, tokenizer) to out_dir.
    Starts a local Ray (or joins cfg.cluster.ray_address) unless one is running. Returns each step's metrics."""
    import ray

    if steps < 1:
        raise ValueError(f"run_sft: steps must be >= 1, got {steps}")
    if not examples:
        raise ValueError("run_sft: no examples")
    from megatron_mc.trainer.group import TrainGroup

    started_ray = not ray.is_initialized()
    if started_ray:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        if cfg.cluster.ray_address:
            ray.init(address=cfg.cluster.ray_address, include_dashboard=False)
        else:
            init_local_ray()
    cfg = sft_config(cfg, steps)
    group = TrainGroup(cfg, hf_dir)
    history = []
    try:
        for step, batch in enumerate(batches(examples, cfg.train.train_batch_size, steps, cfg.train.seed), 1):
            metrics = group.train_sft(batch)
            history.append(metrics)
            if on_step:
                on_step(step, metrics)
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        group.export_hf(out_dir, hf_dir)
    finally:
        group.shutdown()
        if started_ray:
            ray.shutdown()
    return history
