"""Qwen2 / Qwen2.5 / DeepSeek-R1-Distill-Qwen: Llama-like with a bias on the q, k, v projections."""
from megatron_mc.models.adapter import ModelAdapter


class Qwen2Adapter(ModelAdapter):
    family = "qwen2"
    architectures = ("Qwen2ForCausalLM",)
    # Sliding-window keys are read to check that the window is off.
    extra_keys = frozenset({"use_sliding_window", "sliding_window", "max_window_layers"})
    qkv_bias = True

    def _check_values(self) -> None:
        super()._check_values()
        self._require("use_sliding_window", (False, None))
