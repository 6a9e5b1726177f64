"""Qwen3 dense: RMSNorm on each head's queries and keys before RoPE, explicit head_dim, no biases."""
from megatron_mc.models.adapter import ModelAdapter


class Qwen3Adapter(ModelAdapter):
    family = "qwen3"
    architectures = ("Qwen3ForCausalLM",)
    extra_keys = frozenset({"use_sliding_window", "sliding_window", "max_window_layers", "attention_bias"})
    qk_layernorm = True

    def _check_values(self) -> None:
        super()._check_values()
        self._require("use_sliding_window", (False, None))
        self._require("attention_bias", (False, None))
