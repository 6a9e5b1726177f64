"""The learning-rate schedule of cfg.train, as Megatron-Core's OptimizerParamScheduler (checkpointable)."""
from __future__ import annotations

from megatron_mc.config import TrainConfig

DECAY_STYLES = {"constant": "constant", "linear": "linear", "cosine": "cosine"}


def make_lr_scheduler(optimizer, train: TrainConfig, total_optimizer_steps: int):
    """Warm up linearly from 0 over train.warmup_steps optimizer steps, then decay to train.min_lr by
    `total_optimizer_steps` in train.lr_schedule's style."""
    from megatron.core.optimizer_param_scheduler import OptimizerParamScheduler

    return OptimizerParamScheduler(
        optimizer, init_lr=0.0 if train.warmup_steps else train.lr, max_lr=train.lr,
        min_lr=train.min_lr,
        lr_warmup_steps=train.warmup_steps, lr_decay_steps=max(total_optimizer_steps, train.warmup_steps + 1),
        lr_decay_style=DECAY_STYLES[train.lr_schedule], start_wd=train.weight_decay, end_wd=train.weight_decay,
        wd_incr_steps=max(total_optimizer_steps, 1), wd_incr_style="constant",
        use_checkpoint_opt_param_scheduler=True, override_opt_param_scheduler=False)
