"""Wrap built model chunks for training: Megatron-Core DDP (bucketed, optionally overlapped gradient
reduction) and its optimizer (optionally distributed across data-parallel ranks)."""
from __future__ import annotations

import torch

from megatron_mc.models.build import unwrap
from megatron_mc.parallel.config import ParallelConfig


def wrap_ddp(model_chunks: list[torch.nn.Module], par: ParallelConfig) -> list[torch.nn.Module]:
    from megatron.core.distributed import DistributedDataParallel, DistributedDataParallelConfig

    ddp_config = DistributedDataParallelConfig(
        grad_reduce_in_fp32=True,
        overlap_grad_reduce=par.overlap_grad_reduce,
        overlap_param_gather=par.overlap_param_gather,
        use_distributed_optimizer=par.distributed_optimizer,
    )
    return [
        DistributedDataParallel(
            config=unwrap(chunk).config, ddp_config=ddp_config, module=chunk,
            # Only the first chunk buckets, as Megatron-LM does for interleaved pipelines.
            disable_bucketing=i > 0,
        )
        for i, chunk in enumerate(model_chunks)
    ]


def build_optimizer(ddp_chunks: list[torch.nn.Module], par: ParallelConfig, lr: float,
                    weight_decay: float = 0.0, adam_beta1: float = 0.9, adam_beta2: float = 0.999,
                    adam_eps: float = 1e-8, clip_grad: float = 1.0, min_lr: float = 0.0):
    """Megatron-Core's Adam over the DDP chunks, mixed precision following the model's dtype. Every param
    group carries max_lr = lr and min_lr, the bounds Megatron-Core's OptimizerParamScheduler decays between."""
    from megatron.core.optimizer import OptimizerConfig, get_megatron_optimizer

    config = unwrap(ddp_chunks[0]).config
    opt_config = OptimizerConfig(
        optimizer="adam", lr=lr, min_lr=min_lr, weight_decay=weight_decay, adam_beta1=adam_beta1,
        adam_beta2=adam_beta2, adam_eps=adam_eps, clip_grad=clip_grad,
        bf16=config.bf16, fp16=config.fp16, params_dtype=config.params_dtype,
        use_distributed_optimizer=par.distributed_optimizer,
    )
    return get_megatron_optimizer(opt_config, ddp_chunks)
