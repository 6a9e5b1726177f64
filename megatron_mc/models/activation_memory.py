"""How the policy trades compute or host traffic for activation memory: Megatron-Core 0.16's recomputation
(selective modules, or full layers uniformly / in a block) and its fine-grained activation offloading
(inputs of chosen modules kept in host memory until the backward pass), as TransformerConfig fields."""
from __future__ import annotations

from megatron_mc.models.config import ModelConfig


def activation_memory_kwargs(cfg: ModelConfig, layers_per_pipeline_rank: int, moe_grouped_gemm: bool) -> dict:
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
        layers = cfg.recompute_num_layers or 1
        if layers > layers_per_pipeline_rank:
            raise ValueError(f"model.recompute_num_layers: {layers} is more than the {layers_per_pipeline_rank} "
                             "layers each pipeline rank holds")
        kwargs.update(recompute_granularity="full", recompute_method=cfg.recompute_method or "uniform",
                      recompute_num_layers=layers)
    if cfg.activation_offload_modules:
        kwargs.update(fine_grained_activation_offloading=True,
                      offload_modules=list(cfg.activation_offload_modules))
    return kwargs
