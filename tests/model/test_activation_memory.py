"""model.recompute*, model.activation_offload_modules and the FP8 knobs: validated by our keys, and what we
accept reaches a TransformerConfig that Megatron-Core's own validation builds."""
import pytest
import torch

from megatron_mc.models.config import OFFLOAD_MODULES, RECOMPUTE_MODULES, ModelConfig
from megatron_mc.parallel.config import ParallelConfig
from megatron_mc.typed_config import ConfigError, from_dict
from model_tiny import hf_config


def _transformer_config(tmp_path, family="qwen3", pp=1, **model):
    from megatron_mc.models.build import load_adapter, transformer_config

    hf_config(family).save_pretrained(tmp_path)
    cfg = from_dict(ModelConfig, {"hf_dir": str(tmp_path), "dtype": "float32", **model}, "model")
    return transformer_config(cfg, ParallelConfig(pp=pp), load_adapter(cfg), "local")


def test_plain_recompute_settings_keep_their_meaning(tmp_path):
    assert _transformer_config(tmp_path).recompute_granularity is None
    selective = _transformer_config(tmp_path, recompute="selective")
    assert (selective.recompute_granularity, selective.recompute_modules) == ("selective", ["core_attn"])
    full = _transformer_config(tmp_path, recompute="full")
    assert (full.recompute_granularity, full.recompute_method, full.recompute_num_layers) == ("full", "uniform", 1)


def test_recompute_choices_reach_the_transformer_config(tmp_path):
    selective = _transformer_config(tmp_path, recompute="selective", recompute_modules=["core_attn", "mlp"])
    assert selective.recompute_modules == ["core_attn", "mlp"]
    full = _transformer_config(tmp_path, recompute="full", recompute_method="block", recompute_num_layers=3)
    assert (full.recompute_method, full.recompute_num_layers) == ("block", 3)


@pytest.mark.parametrize("module", [m for m in RECOMPUTE_MODULES if m != "moe_act"])
def test_every_accepted_recompute_module_passes_megatrons_validation(tmp_path, module):
    config = _transformer_config(tmp_path, "qwen3_moe", recompute="selective", recompute_modules=[module])
    assert module in config.recompute_modules


def test_every_accepted_offload_module_passes_megatrons_validation(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # offloading runs on CUDA streams only
    config = _transformer_config(tmp_path, "qwen3_moe", activation_offload_modules=list(OFFLOAD_MODULES))
    assert config.fine_grained_activation_offloading and config.offload_modules == list(OFFLOAD_MODULES)
    assert _transformer_config(tmp_path).fine_grained_activation_offloading is False


def test_offloading_is_off_with_a_logged_reason_without_cuda(tmp_path, caplog):
    with caplog.at_level("INFO", logger="megatron_mc.models.activation_memory"):
        config = _transformer_config(tmp_path, activation_offload_modules=["core_attn"])
    assert config.fine_grained_activation_offloading is False
    assert "no CUDA device" in caplog.text


@pytest.mark.parametrize("model,named", [
    ({"recompute": "full", "recompute_modules": ["mlp"]}, "recompute_modules applies to recompute: selective"),
    ({"recompute": "selective", "recompute_modules": ["attention"]}, "recompute_modules: ['attention']"),
    ({"recompute": "selective", "recompute_num_layers": 2}, "recompute_num_layers applies to recompute: full"),
    ({"recompute_method": "block"}, "recompute_method applies to recompute: full"),
    ({"recompute": "full", "recompute_num_layers": 0}, "recompute_num_layers must be >= 1"),
    ({"activation_offload_modules": ["attn_proj"]}, "attn_proj needs core_attn"),
    ({"activation_offload_modules": ["mlp"]}, "activation_offload_modules: ['mlp']"),
    ({"local_attention": "flash"}, "model.local_attention"),
])
def test_invalid_choices_are_refused_by_key(model, named):
    with pytest.raises(ConfigError, match=named.replace("[", r"\[").replace("]", r"\]")):
        from_dict(ModelConfig, model, "model")


def test_choices_the_model_cannot_take_are_refused_by_key(tmp_path):
    with pytest.raises(ValueError, match="model.recompute_num_layers: 3 is more than the 2 layers"):
        _transformer_config(tmp_path, pp=2, recompute="full", recompute_num_layers=3)
    # uniform recomputation steps through a chunk 3 layers at a time: 4 layers would index past the last
    with pytest.raises(ValueError, match="model.recompute_num_layers: 3 does not divide the 4 layers"):
        _transformer_config(tmp_path, recompute="full", recompute_num_layers=3)
    assert _transformer_config(tmp_path, recompute="full", recompute_method="block",
                               recompute_num_layers=3).recompute_num_layers == 3
    with pytest.raises(ValueError, match="model.recompute_modules: moe_act needs grouped expert GEMMs"):
        _transformer_config(tmp_path, "qwen3_moe", recompute="selective", recompute_modules=["moe_act"])


def test_fp8_pads_expert_tokens_and_token_counts():
    from megatron.core.transformer.transformer_config import TransformerConfig

    from megatron_mc.models.layer_spec import fp8_token_multiple, precision_kwargs

    fp8 = from_dict(ModelConfig, {"fp8": {"enabled": True}}, "model")
    assert precision_kwargs(fp8, num_experts=4)["moe_router_padding_for_quantization"] is True
    assert precision_kwargs(fp8)["moe_router_padding_for_quantization"] is False
    assert "moe_router_padding_for_quantization" in TransformerConfig.__dataclass_fields__
    assert (fp8_token_multiple(fp8), fp8_token_multiple(ModelConfig())) == (16, 1)
    assert torch.bfloat16 == precision_kwargs(fp8)["params_dtype"]


def test_yarn_attention_factor_lives_in_the_softmax_scale(tmp_path):
    """Megatron-Core's own factor is 1 (so TE's fused RoPE, which takes none, serves YaRN) and the softmax
    scale carries its square; the HF parity at 3x the window is test_model_single's."""
    import math

    from megatron.core.models.common.embeddings.yarn_rotary_pos_embedding import (
        _yarn_get_concentration_factor_from_config)

    yarn = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32}
    config = _transformer_config(tmp_path, rope_scaling=yarn)
    assert _yarn_get_concentration_factor_from_config(config) == 1.0
    factor = 0.1 * math.log(4.0) + 1.0
    assert config.softmax_scale == pytest.approx(factor**2 / math.sqrt(config.kv_channels), rel=1e-12)
    assert _transformer_config(tmp_path).softmax_scale is None
