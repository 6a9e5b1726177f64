"""How the policy trades compute or host traffic for activation memory: Megatron-Core 0.16's recomputation
(selective modules, or full layers uniformly / in a block) and its fine-grained activation offloading
(inputs of chosen modules kept in host memory until the backward pass), as TransformerConfig fields."""
from __future__ import annotations

import logging

import torch

from megatron_mc.models.config import ModelConfig

log = logging.getLogger(__name__)


def activation_memory_kwargs(cfg: ModelConfig, layers_per_chunk: int, moe_grouped_gemm: bool) -> dict:
    """TransformerConfig fields for model.recompute* and model.activation_offload_modules, with the
    combinations Megatron-Core refuses (it names its own flags) refused here by our keys."""
    kwargs: dict = {}
    if cfg.recompute == "selective":
        kwargs["recompute_granularity"] = "selective"
        if cfg.recompute_modules is not None:
            if "moe_act" in cfg.recompute_modules and not moe_grouped_gemm:
                raise ValueError("model.recompute_modules: moe_act needs grouped expert GEMMs (Transformer "
                                 "Engine's layers on an MoE model); drop moe_act or use the TE layers")
            kwargs["recompute_modules"] = list(cfg.recompute_modules)
    elif cfg.recompute == "full":
        layers, method = cfg.recompute_num_layers or 1, cfg.recompute_method or "uniform"
        if layers > layers_per_chunk:
            raise ValueError(f"model.recompute_num_layers: {layers} is more than the {layers_per_chunk} layers "
                             "each model chunk holds (layers / (pp * vpp))")
        if method == "uniform" and layers_per_chunk % layers:
            # Megatron-Core's uniform recomputation steps through a chunk's layers `layers` at a time and
            # indexes past the last one otherwise (IndexError in the first backward)
            raise ValueError(f"model.recompute_num_layers: {layers} does not divide the {layers_per_chunk} layers "
                             "each model chunk holds; pick a divisor or model.recompute_method: block")
        kwargs.update(recompute_granularity="full", recompute_method=method, recompute_num_layers=layers)
    if cfg.activation_offload_modules:
        if torch.cuda.is_available():
            kwargs.update(fine_grained_activation_offloading=True,
                          offload_modules=list(cfg.activation_offload_modules))
        else:
            log.info("model.activation_offload_modules is off on this machine: Megatron-Core's activation "
                     "offloading copies on CUDA streams and there is no CUDA device")
    return kwargs
