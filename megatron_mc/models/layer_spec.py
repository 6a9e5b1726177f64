"""The one place that chooses the layer implementation and numeric precision of the policy.

Transformer Engine's layers where TE imports (fused kernels, FP8, CP attention), Megatron-Core's local
layers otherwise (CPU, machines without TE), with torch SDPA as their core attention (our all-gather
attention under context parallelism).
FP8 exists only in TE, so asking for it without TE is an error.
"""
from __future__ import annotations

import importlib.util

import torch

from megatron_mc.models.config import ModelConfig
from megatron_mc.models.context_parallel_attention import AllGatherContextParallelAttention
from megatron_mc.models.sdpa_attention import SDPAttention

# Transformer Engine asserts FP8 GEMM dimensions divisible by 16 (and 8 for the other dimension).
FP8_TOKEN_MULTIPLE = 16
TORCH_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def transformer_engine_import_error() -> str | None:
    """Why Transformer Engine does not import here (None when it does): not installed, or installed
    without what it loads (its CUDA extension, cuDNN)."""
    if importlib.util.find_spec("transformer_engine") is None:
        return "the transformer_engine package is not installed"
    try:
        import transformer_engine.pytorch  # noqa: F401
    except (ImportError, OSError, RuntimeError) as e:
        return f"import transformer_engine.pytorch failed: {type(e).__name__}: {e}"
    return None


def transformer_engine_available() -> bool:
    return transformer_engine_import_error() is None


def choose_impl(cfg: ModelConfig) -> str:
    """'transformer_engine' or 'local', from cfg.transformer_impl ('auto' picks TE when it imports)."""
    te_error = transformer_engine_import_error()
    have_te = te_error is None
    impl = cfg.transformer_impl
    if impl == "auto":
        impl = "transformer_engine" if have_te else "local"
    if impl == "transformer_engine" and not have_te:
        raise RuntimeError(
            f"model.transformer_impl: transformer_engine requires Transformer Engine, which does not import here "
            f"({te_error}); install it on the CUDA nodes (pip install --no-build-isolation "
            f"'transformer-engine[pytorch]', matching the node's CUDA and cuDNN) or set model.transformer_impl: "
            f"local (Megatron-Core's own layers: no fused kernels, no FP8, more activation memory)"
        )
    if cfg.fp8.enabled and impl != "transformer_engine":
        raise RuntimeError(
            "model.fp8.enabled needs Transformer Engine, which "
            + ("is not selected (model.transformer_impl: local)" if have_te else "does not import here")
            + "; install transformer-engine[pytorch] on a CUDA machine or set model.fp8.enabled: false"
        )
    return impl


def layer_spec(impl: str, num_experts: int, qk_layernorm: bool, context_parallel: bool = False,
               local_attention: str = "sdpa"):
    """TE's layers (their attention splits sequences for CP itself), or the local layers with RMSNorm and,
    as core attention, our all-gather CP attention under context parallelism, else torch SDPA
    (`local_attention` "sdpa") or Megatron's DotProductAttention ("dot_product")."""
    from megatron.core.models.gpt import gpt_layer_specs

    experts = num_experts or None
    if impl == "transformer_engine":
        return gpt_layer_specs.get_gpt_layer_with_transformer_engine_spec(
            num_experts=experts, moe_grouped_gemm=bool(experts), qk_layernorm=qk_layernorm
        )
    _define_missing_te_gemm()
    spec = gpt_layer_specs.get_gpt_layer_local_spec(
        num_experts=experts, moe_grouped_gemm=False, qk_layernorm=qk_layernorm, normalization="RMSNorm"
    )
    spec.submodules.input_layernorm = RMSNorm
    spec.submodules.pre_mlp_layernorm = RMSNorm
    if qk_layernorm:
        spec.submodules.self_attention.submodules.q_layernorm = RMSNorm
        spec.submodules.self_attention.submodules.k_layernorm = RMSNorm
    if context_parallel:
        spec.submodules.self_attention.submodules.core_attention = AllGatherContextParallelAttention
    elif local_attention == "sdpa":
        spec.submodules.self_attention.submodules.core_attention = SDPAttention
    return spec


def decoder_spec(impl: str, layer, config, vp_stage):
    """What GPTModel takes as its layer spec: TE's layer spec as is; for local layers, the block with
    this stage's layers and RMSNorm as the final norm too."""
    if impl == "transformer_engine":
        return layer
    from megatron.core.transformer.transformer_block import TransformerBlockSubmodules, get_num_layers_to_build

    return TransformerBlockSubmodules(
        layer_specs=[layer] * get_num_layers_to_build(config, vp_stage=vp_stage), layer_norm=RMSNorm
    )


class RMSNorm:
    """torch's RMSNorm, with the `sequence_parallel` flag Megatron-Core reads to all-reduce a norm's
    gradient across TP ranks when activations are sequence-sharded. Megatron-Core's own torch norm
    (WrappedTorchNorm) refuses sequence parallelism; TE's norm carries the same flag."""

    def __new__(cls, config, hidden_size: int, eps: float = 1e-5, **unused):
        norm = torch.nn.RMSNorm(hidden_size, eps=eps)
        norm.weight.sequence_parallel = config.sequence_parallel
        return norm


def precision_kwargs(cfg: ModelConfig, num_experts: int = 0) -> dict:
    """TransformerConfig fields for dtype and FP8 (with MoE, the router pads each expert's tokens to what
    FP8 GEMMs take)."""
    dtype = TORCH_DTYPES[cfg.dtype]
    kwargs = {
        "params_dtype": dtype,
        "pipeline_dtype": dtype,
        "bf16": cfg.dtype == "bfloat16",
        "fp16": cfg.dtype == "float16",
        "attention_softmax_in_fp32": True,
    }
    fp8 = cfg.fp8
    if fp8.enabled:
        keep_bf16 = fp8.bf16_layers_at_start > 0 or fp8.bf16_layers_at_end > 0
        kwargs.update(
            fp8=fp8.format,
            fp8_recipe=fp8.recipe,
            fp8_margin=fp8.margin,
            fp8_amax_history_len=fp8.amax_history_len,
            fp8_amax_compute_algo=fp8.amax_compute_algo,
            first_last_layers_bf16=keep_bf16,
            num_layers_at_start_in_bf16=fp8.bf16_layers_at_start,
            num_layers_at_end_in_bf16=fp8.bf16_layers_at_end,
            # Megatron-Core 0.16's name; its older moe_router_padding_for_fp8 only sets this one.
            moe_router_padding_for_quantization=num_experts > 0,
        )
    return kwargs


def fp8_token_multiple(cfg: ModelConfig) -> int:
    """What the number of tokens in a micro-batch (per rank) must be a multiple of: TE's FP8 GEMMs assert
    dimensions divisible by 16; 1 when FP8 is off."""
    return FP8_TOKEN_MULTIPLE if cfg.fp8.enabled else 1


def _define_missing_te_gemm() -> None:
    """Megatron-Core 0.16's MoE router tests `te_general_gemm is not None` but binds the name only when TE
    imports; without TE every MoE forward raises NameError. Binding it to None selects its torch path."""
    from megatron.core.transformer.moe import moe_utils

    if not hasattr(moe_utils, "te_general_gemm"):
        moe_utils.te_general_gemm = None
