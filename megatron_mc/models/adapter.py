"""The base of the model-family adapters: HF config.json -> Megatron-Core TransformerConfig fields, and the
name/layout mapping between HF tensors and Megatron parameters.

A family file (qwen2.py, ...) lists the config keys it understands and the rules that differ; every
config key outside those lists is an error naming it, so an unsupported architecture variant never
converts silently into a different model.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional

import torch.nn.functional as F

from megatron_mc.models import rope as rope_mod
from megatron_mc.models.layouts import QKV, GateUp, Same, Vocab

# config.json keys that describe bookkeeping, generation or training, not the network's function.
NON_ARCHITECTURE_KEYS = frozenset(
    {
        "_name_or_path", "architectures", "auto_map", "bos_token_id", "chunk_size_feed_forward",
        "dtype", "eos_token_id", "id2label", "initializer_range", "is_encoder_decoder", "label2id",
        "model_type", "output_attentions", "output_hidden_states", "pad_token_id", "problem_type",
        "return_dict", "torch_dtype", "transformers_version", "use_cache", "attention_dropout",
        "max_position_embeddings", "tokenizer_class", "pretraining_tp",
    }
)
# Keys every family here reads.
COMMON_ARCHITECTURE_KEYS = frozenset(
    {
        "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
        "num_key_value_heads", "head_dim", "hidden_act", "rms_norm_eps", "tie_word_embeddings",
        "rope_theta", "rope_scaling", "rope_parameters", "layer_types",
    }
)


@dataclass(frozen=True)
class Rule:
    """Megatron parameter name pattern (canonical: global layer and expert indices, local-spec names)
    and the HF tensor names it corresponds to, with the layout converting between them."""

    megatron: str
    hf: tuple[str, ...]
    layout: Any
    exported: bool = True  # False for a Megatron copy of a tensor HF stores once (tied output layer)

    def match(self, name: str) -> Optional[tuple[str, ...]]:
        m = re.fullmatch(self.megatron, name)
        return tuple(h.format(**m.groupdict()) for h in self.hf) if m else None


class ModelAdapter:
    family: str = ""
    architectures: tuple[str, ...] = ()
    extra_keys: frozenset = frozenset()
    qk_layernorm: bool = False
    qkv_bias: bool = False

    def __init__(self, hf_config: dict, source: str = "config.json", make_vocab_size_divisible_by: int = 128,
                 rope_override: Optional[dict] = None):
        self.hf = hf_config
        self.source = source
        self._check_keys()
        self._check_values()
        self.rope = self._read_rope(rope_override)
        m = make_vocab_size_divisible_by
        self.padded_vocab = -(-self.vocab_size // m) * m

    # --- the HF config, checked -------------------------------------------------------------------
    def _check_keys(self) -> None:
        known = NON_ARCHITECTURE_KEYS | COMMON_ARCHITECTURE_KEYS | self.extra_keys
        unknown = sorted(set(self.hf) - known)
        if unknown:
            raise ValueError(
                f"{self.source}: key(s) {unknown} are not understood by the {self.family} adapter "
                f"(megatron_mc/models/{self.family}.py); converting would ignore them and change the model. "
                "Remove them if they are inert, or extend the adapter"
            )
        archs = self.hf.get("architectures") or []
        foreign = [a for a in archs if a not in self.architectures]
        if foreign:
            raise ValueError(
                f"{self.source}: architectures {foreign} do not belong to the {self.family} adapter "
                f"(it handles {list(self.architectures)})"
            )

    def _require(self, key: str, allowed: tuple, default: Any = None) -> None:
        value = self.hf.get(key, default)
        if value not in allowed:
            raise ValueError(
                f"{self.source}: {key}={value!r} is not supported by the {self.family} adapter "
                f"(supported: {list(allowed)})"
            )

    def _check_values(self) -> None:
        self._require("hidden_act", ("silu",), "silu")
        layer_types = self.hf.get("layer_types") or []
        other = sorted({t for t in layer_types if t != "full_attention"})
        if other:
            raise ValueError(f"{self.source}: layer_types {other} are not supported (only full_attention)")

    def _read_rope(self, override):
        try:
            return rope_mod.read_rope(self.hf, override)
        except ValueError as e:
            raise ValueError(f"{self.source}: {e}") from None

    # --- sizes --------------------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return self.hf["vocab_size"]

    @property
    def num_layers(self) -> int:
        return self.hf["num_hidden_layers"]

    @property
    def num_heads(self) -> int:
        return self.hf["num_attention_heads"]

    @property
    def num_kv_heads(self) -> int:
        return self.hf.get("num_key_value_heads") or self.num_heads

    @property
    def head_dim(self) -> int:
        return self.hf.get("head_dim") or self.hf["hidden_size"] // self.num_heads

    @property
    def tied(self) -> bool:
        return bool(self.hf.get("tie_word_embeddings", False))

    @property
    def num_experts(self) -> int:
        return 0

    # --- Megatron-Core ------------------------------------------------------------------------------
    def transformer_config_kwargs(self) -> dict:
        return {
            "num_layers": self.num_layers,
            "hidden_size": self.hf["hidden_size"],
            "ffn_hidden_size": self.hf["intermediate_size"],
            "num_attention_heads": self.num_heads,
            "num_query_groups": self.num_kv_heads,
            "kv_channels": self.head_dim,
            "normalization": "RMSNorm",
            "layernorm_epsilon": self.hf.get("rms_norm_eps", 1e-6),
            "gated_linear_unit": True,
            "activation_func": F.silu,
            "add_bias_linear": False,
            "add_qkv_bias": self.qkv_bias,
            "qk_layernorm": self.qk_layernorm,
            "hidden_dropout": 0.0,
            "attention_dropout": 0.0,
            "persist_layer_norm": False,
        }

    # --- HF <-> Megatron names ----------------------------------------------------------------------
    def rule_for(self, name: str) -> tuple[Rule, tuple[str, ...]]:
        """The rule for canonical Megatron parameter `name` and the HF tensor names it maps to."""
        if not hasattr(self, "_rules"):
            self._rules = self.rules()
        for rule in self._rules:
            hf_names = rule.match(name)
            if hf_names:
                return rule, hf_names
        raise KeyError(f"Megatron parameter {name!r} has no HF counterpart in the {self.family} adapter")

    def rules(self) -> list[Rule]:
        layer = r"decoder\.layers\.(?P<layer>\d+)\."
        hf_layer = "model.layers.{layer}."
        qkv = QKV(self.num_kv_heads, self.num_heads // self.num_kv_heads, self.head_dim)
        vocab = Vocab(self.vocab_size, self.padded_vocab)
        rules = [
            Rule(r"embedding\.word_embeddings\.weight", ("model.embed_tokens.weight",), vocab),
            Rule(r"decoder\.final_layernorm\.weight", ("model.norm.weight",), Same()),
            Rule(
                r"output_layer\.weight",
                ("model.embed_tokens.weight",) if self.tied else ("lm_head.weight",),
                vocab,
                exported=not self.tied,
            ),
            Rule(layer + r"input_layernorm\.weight", (hf_layer + "input_layernorm.weight",), Same()),
            Rule(
                layer + r"self_attention\.linear_qkv\.weight",
                tuple(hf_layer + f"self_attn.{p}_proj.weight" for p in "qkv"),
                qkv,
            ),
            Rule(layer + r"self_attention\.linear_proj\.weight", (hf_layer + "self_attn.o_proj.weight",), Same()),
            Rule(layer + r"pre_mlp_layernorm\.weight", (hf_layer + "post_attention_layernorm.weight",), Same()),
        ]
        if self.qkv_bias:
            rules.append(
                Rule(
                    layer + r"self_attention\.linear_qkv\.bias",
                    tuple(hf_layer + f"self_attn.{p}_proj.bias" for p in "qkv"),
                    qkv,
                )
            )
        if self.qk_layernorm:
            rules += [
                Rule(layer + r"self_attention\.q_layernorm\.weight", (hf_layer + "self_attn.q_norm.weight",), Same()),
                Rule(layer + r"self_attention\.k_layernorm\.weight", (hf_layer + "self_attn.k_norm.weight",), Same()),
            ]
        return rules + self.mlp_rules(layer, hf_layer)

    def mlp_rules(self, layer: str, hf_layer: str) -> list[Rule]:
        return [
            Rule(
                layer + r"mlp\.linear_fc1\.weight",
                (hf_layer + "mlp.gate_proj.weight", hf_layer + "mlp.up_proj.weight"),
                GateUp(),
            ),
            Rule(layer + r"mlp\.linear_fc2\.weight", (hf_layer + "mlp.down_proj.weight",), Same()),
        ]
