"""Build the policy as Megatron-Core GPTModel chunks on already-initialized parallel state.

Parallelism and precision are applied around the family adapter, never inside it: the adapter gives the
architecture, layer_spec.py the implementation and precision, ParallelConfig the sharding.
"""
from __future__ import annotations

from typing import Optional

import torch

from megatron_mc.models import rope as rope_mod
from megatron_mc.models.activation_memory import activation_memory_kwargs
from megatron_mc.models.adapter import ModelAdapter
from megatron_mc.models.config import ModelConfig
from megatron_mc.models.fusions import fusion_kwargs
from megatron_mc.models.layer_spec import choose_impl, decoder_spec, layer_spec, precision_kwargs
from megatron_mc.models.registry import adapter_for_dir
from megatron_mc.parallel.config import ParallelConfig


def load_adapter(cfg: ModelConfig) -> ModelAdapter:
    return adapter_for_dir(cfg.hf_dir, cfg.make_vocab_size_divisible_by, cfg.rope_scaling)


def transformer_config(cfg: ModelConfig, par: ParallelConfig, adapter: ModelAdapter, impl: str,
                       routing_replay: bool = False):
    if routing_replay and not adapter.num_experts:
        raise ValueError(f"algo.routing_replay: true needs a mixture-of-experts model, but {adapter.source} is "
                         "dense; set algo.routing_replay: false")
    from megatron.core.transformer.transformer_config import TransformerConfig

    par.check_model(adapter.num_layers, adapter.num_heads, adapter.num_kv_heads, adapter.num_experts)
    if adapter.padded_vocab % par.tp:
        raise ValueError(
            f"padded vocabulary {adapter.padded_vocab} is not divisible by tp={par.tp}; choose "
            "model.make_vocab_size_divisible_by as a multiple of tp"
        )
    architecture = adapter.transformer_config_kwargs()
    fusions = fusion_kwargs(architecture["activation_func"], architecture["gated_linear_unit"])
    grouped_gemm = bool(adapter.num_experts) and impl == "transformer_engine"
    config = TransformerConfig(
        **architecture | fusions,
        **precision_kwargs(cfg, adapter.num_experts),
        **activation_memory_kwargs(cfg, adapter.num_layers // (par.pp * par.virtual_stages), grouped_gemm),
        **par.megatron_sizes(),
        sequence_parallel=par.sequence_parallel,
        moe_grouped_gemm=grouped_gemm,
        use_cpu_initialization=not torch.cuda.is_available(),
        # Always initialize: Megatron-Core 0.16 marks parameters as TP-sharded (tensor_model_parallel,
        # partition_dim) only inside its init routines, and the HF mapping and grad clipping read those.
        perform_initialization=True,
        moe_enable_routing_replay=routing_replay,  # the routers take recorded routes (trainer/routing_replay.py)
    )
    rope_mod.set_config_fields(config, adapter.rope)
    return config


def build_model(cfg: ModelConfig, par: ParallelConfig, adapter: Optional[ModelAdapter] = None,
                routing_replay: bool = False) -> list[torch.nn.Module]:
    """One GPTModel per virtual pipeline stage of this rank, on this rank's device, in cfg.dtype.
    `routing_replay`: MoE routers that can replay recorded routes (algo.routing_replay).

    Half-precision chunks are wrapped in Megatron-Core's Float16Module (fp32 logits out), as its DDP and
    optimizers expect. Weights are random until loaded (checkpoint.hf_import or checkpoint.dist).
    """
    from megatron.core import parallel_state
    from megatron.core.models.gpt import GPTModel
    from megatron.core.transformer.module import Float16Module

    adapter = adapter or load_adapter(cfg)
    impl = choose_impl(cfg)
    config = transformer_config(cfg, par, adapter, impl, routing_replay)
    spec = layer_spec(impl, adapter.num_experts, adapter.qk_layernorm,
                      context_parallel=par.cp > 1 and impl == "local", local_attention=cfg.local_attention)
    device = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    max_positions = cfg.max_position_embeddings or adapter.hf.get("max_position_embeddings", 4096)
    vpp = par.virtual_stages if par.virtual_stages > 1 else None
    chunks = []
    for stage in range(par.virtual_stages):
        vp_stage = stage if vpp else None
        model = GPTModel(
            config=config,
            transformer_layer_spec=decoder_spec(impl, spec, config, vp_stage),
            vocab_size=adapter.padded_vocab,
            max_sequence_length=max_positions,
            pre_process=parallel_state.is_pipeline_first_stage(ignore_virtual=False, vp_stage=vp_stage),
            post_process=parallel_state.is_pipeline_last_stage(ignore_virtual=False, vp_stage=vp_stage),
            parallel_output=True,
            share_embeddings_and_output_weights=adapter.tied,
            vp_stage=vp_stage,
            **rope_mod.gpt_model_kwargs(adapter.rope),
        )
        rope_mod.apply_to_model(model, adapter.rope, adapter.head_dim)
        model.to(device)
        if cfg.dtype != "float32":
            model = Float16Module(config, model)
        chunks.append(model)
    return chunks


def unwrap(chunk: torch.nn.Module) -> torch.nn.Module:
    """The GPTModel inside DDP / Float16Module wrappers."""
    while hasattr(chunk, "module"):
        chunk = chunk.module
    return chunk
