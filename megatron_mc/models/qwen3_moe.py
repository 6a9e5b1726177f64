"""Qwen3-MoE (30B-A3B, 235B-A22B): Qwen3 attention, every layer a routed mixture of SwiGLU experts."""
from megatron_mc.models.adapter import Rule
from megatron_mc.models.layouts import GateUp, Same
from megatron_mc.models.qwen3 import Qwen3Adapter


class Qwen3MoeAdapter(Qwen3Adapter):
    family = "qwen3_moe"
    architectures = ("Qwen3MoeForCausalLM",)
    extra_keys = Qwen3Adapter.extra_keys | frozenset(
        {
            "decoder_sparse_step", "mlp_only_layers", "moe_intermediate_size", "num_experts",
            "num_local_experts", "num_experts_per_tok", "norm_topk_prob", "output_router_logits",
            "router_aux_loss_coef",
        }
    )

    def _check_values(self) -> None:
        super()._check_values()
        self._require("decoder_sparse_step", (1, None))
        if self.hf.get("mlp_only_layers"):
            raise ValueError(
                f"{self.source}: mlp_only_layers={self.hf['mlp_only_layers']} is not supported "
                "(every layer must be a mixture-of-experts layer)"
            )

    @property
    def num_experts(self) -> int:
        return self.hf.get("num_experts") or self.hf["num_local_experts"]

    def transformer_config_kwargs(self) -> dict:
        aux = self.hf.get("router_aux_loss_coef", 0.0) if self.hf.get("output_router_logits") else 0.0
        return super().transformer_config_kwargs() | {
            "num_moe_experts": self.num_experts,
            "moe_ffn_hidden_size": self.hf["moe_intermediate_size"],
            "moe_router_topk": self.hf["num_experts_per_tok"],
            # Softmax over the top-k logits equals HF's renormalised top-k of the full softmax.
            "moe_router_pre_softmax": not self.hf.get("norm_topk_prob", False),
            "moe_router_score_function": "softmax",
            "moe_router_dtype": "fp32",  # HF computes routing weights in fp32
            "moe_router_load_balancing_type": "aux_loss" if aux else "none",
            "moe_aux_loss_coeff": aux,
            "moe_token_dispatcher_type": "alltoall",
        }

    def mlp_rules(self, layer: str, hf_layer: str) -> list[Rule]:
        expert = layer + r"mlp\.experts\.local_experts\.(?P<expert>\d+)\."
        hf_expert = hf_layer + "mlp.experts.{expert}."
        return [
            Rule(layer + r"mlp\.router\.weight", (hf_layer + "mlp.gate.weight",), Same()),
            Rule(
                expert + r"linear_fc1\.weight",
                (hf_expert + "gate_proj.weight", hf_expert + "up_proj.weight"),
                GateUp(),
            ),
            Rule(expert + r"linear_fc2\.weight", (hf_expert + "down_proj.weight",), Same()),
        ]
