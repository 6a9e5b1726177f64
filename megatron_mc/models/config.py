"""What the user says about the policy model: where the HF checkpoint is and how to hold it numerically."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional

DTYPES = ("bfloat16", "float16", "float32")
# What Megatron-Core 0.16 can recompute selectively (mla_up_proj left out: no family here uses MLA).
RECOMPUTE_MODULES = ("core_attn", "layernorm", "mlp", "moe", "moe_act", "shared_experts")
# Module inputs Megatron-Core 0.16 can offload to host memory (fine-grained activation offloading).
OFFLOAD_MODULES = ("attn_norm", "qkv_linear", "core_attn", "attn_proj", "mlp_norm", "expert_fc1", "moe_act")


@dataclass
class FP8Config:
    """Transformer Engine FP8 settings, passed through unchanged (see megatron.core TransformerConfig)."""

    enabled: bool = False
    format: Literal["e4m3", "hybrid"] = "hybrid"
    recipe: Literal["delayed", "tensorwise", "mxfp8", "blockwise"] = "delayed"
    amax_history_len: int = 1024
    amax_compute_algo: Literal["max", "most_recent"] = "max"
    margin: int = 0
    # Layers kept in bf16 at each end of the stack (first_last_layers_bf16 in Megatron-Core).
    bf16_layers_at_start: int = 0
    bf16_layers_at_end: int = 0

    def __post_init__(self):
        if self.amax_history_len < 1:
            raise ValueError(f"amax_history_len must be >= 1, got {self.amax_history_len}")
        if self.bf16_layers_at_start < 0 or self.bf16_layers_at_end < 0:
            raise ValueError("bf16_layers_at_start and bf16_layers_at_end must be >= 0")


@dataclass
class ModelConfig:
    hf_dir: str = ""
    dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"
    # "auto": Transformer Engine where it imports, Megatron-Core's local layers otherwise.
    transformer_impl: Literal["auto", "transformer_engine", "local"] = "auto"
    fp8: FP8Config = field(default_factory=FP8Config)
    # Replaces the HF config's RoPE scaling (HF `rope_scaling` schema: rope_type, factor, ...).
    rope_scaling: Optional[dict[str, Any]] = None
    max_position_embeddings: Optional[int] = None
    # The padded vocabulary is a multiple of this, independent of tp, so checkpoints reshard freely.
    make_vocab_size_divisible_by: int = 128
    # Core attention of Megatron-Core's local layers (no Transformer Engine): torch SDPA (flash /
    # memory-efficient kernels, packed sequences) or Megatron's DotProductAttention (quadratic memory).
    local_attention: Literal["sdpa", "dot_product"] = "sdpa"
    recompute: Literal["none", "selective", "full"] = "none"
    # selective: which modules (Megatron's default, core_attn, when null).
    recompute_modules: Optional[list[str]] = None
    # full: every recompute_num_layers layers as one unit (uniform), or only the first ones (block).
    recompute_method: Optional[Literal["uniform", "block"]] = None
    recompute_num_layers: Optional[int] = None
    activation_offload_modules: list[str] = field(default_factory=list)

    def __post_init__(self):
        self._check_activation_memory()
        if self.make_vocab_size_divisible_by < 1:
            raise ValueError("make_vocab_size_divisible_by must be >= 1")
        if self.rope_scaling is not None and "rope_type" not in self.rope_scaling and "type" not in self.rope_scaling:
            raise ValueError("rope_scaling needs a 'rope_type' key (yarn, llama3, linear or default)")
        if self.max_position_embeddings is not None and self.max_position_embeddings < 1:
            raise ValueError("max_position_embeddings must be >= 1")

    def _check_activation_memory(self):
        if self.recompute_modules is not None:
            if self.recompute != "selective":
                raise ValueError(f"recompute_modules applies to recompute: selective, not {self.recompute!r}")
            unknown = sorted(set(self.recompute_modules) - set(RECOMPUTE_MODULES))
            if unknown or not self.recompute_modules:
                raise ValueError(f"recompute_modules: {unknown or 'an empty list'} is not a choice; "
                                 f"choose from {list(RECOMPUTE_MODULES)}")
        for key in ("recompute_method", "recompute_num_layers"):
            if getattr(self, key) is not None and self.recompute != "full":
                raise ValueError(f"{key} applies to recompute: full, not {self.recompute!r}")
        if self.recompute_num_layers is not None and self.recompute_num_layers < 1:
            raise ValueError(f"recompute_num_layers must be >= 1, got {self.recompute_num_layers}")
        unknown = sorted(set(self.activation_offload_modules) - set(OFFLOAD_MODULES))
        if unknown:
            raise ValueError(f"activation_offload_modules: {unknown} is not a choice; "
                             f"choose from {list(OFFLOAD_MODULES)}")
        if "attn_proj" in self.activation_offload_modules and "core_attn" not in self.activation_offload_modules:
            raise ValueError("activation_offload_modules: attn_proj needs core_attn too (attn_proj's input is "
                             "core_attn's output, which core_attn's backward needs)")
