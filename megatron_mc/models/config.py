"""What the user says about the policy model: where the HF checkpoint is and how to hold it numerically."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional

DTYPES = ("bfloat16", "float16", "float32")


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
    recompute: Literal["none", "selective", "full"] = "none"

    def __post_init__(self):
        if self.make_vocab_size_divisible_by < 1:
            raise ValueError("make_vocab_size_divisible_by must be >= 1")
        if self.rope_scaling is not None and "rope_type" not in self.rope_scaling and "type" not in self.rope_scaling:
            raise ValueError("rope_scaling needs a 'rope_type' key (yarn, llama3, linear or default)")
        if self.max_position_embeddings is not None and self.max_position_embeddings < 1:
            raise ValueError("max_position_embeddings must be >= 1")
