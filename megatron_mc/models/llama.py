"""Llama 2 / 3 / 3.x (llama3 RoPE scaling through rope.py)."""
from megatron_mc.models.adapter import ModelAdapter


class LlamaAdapter(ModelAdapter):
    family = "llama"
    architectures = ("LlamaForCausalLM",)
    extra_keys = frozenset({"attention_bias", "mlp_bias"})

    def _check_values(self) -> None:
        super()._check_values()
        self._require("attention_bias", (False, None))
        self._require("mlp_bias", (False, None))
