"""Configs, adapters and layouts without Megatron-Core: validation errors name the key, unsupported
architecture fields are refused, and every layout converts TP shards to HF tensors and back exactly."""
from pathlib import Path

import pytest
import torch

from megatron_mc.models.adapter import ModelAdapter
from megatron_mc.models.config import ModelConfig
from megatron_mc.models.layer_spec import choose_impl, transformer_engine_available
from megatron_mc.models.layouts import QKV, GateUp, Same, Vocab
from megatron_mc.models.registry import adapter_for_config
from megatron_mc.parallel.config import ParallelConfig
from megatron_mc.typed_config import ConfigError, from_dict
from model_tiny import FAMILIES, hf_config


def _config(family, **overrides):
    data = hf_config(family).to_dict()
    data["architectures"] = [{"qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM", "llama": "LlamaForCausalLM",
                              "qwen3_moe": "Qwen3MoeForCausalLM"}[family]]
    data.update(overrides)
    return data


def test_parallel_config_unknown_key_is_named_with_a_suggestion():
    with pytest.raises(ConfigError, match=r"parallel\.tpp.*did you mean 'tp'"):
        from_dict(ParallelConfig, {"tpp": 2}, "parallel")


@pytest.mark.parametrize("data,needle", [
    ({"tp": 0}, "tp must be >= 1"),
    ({"sequence_parallel": True}, "sequence_parallel needs tp > 1"),
    ({"vpp": 2}, "vpp=2 needs pp > 1"),
    ({"overlap_param_gather": True}, "overlap_param_gather needs distributed_optimizer"),
])
def test_parallel_config_rejects_bad_values_naming_the_field(data, needle):
    with pytest.raises(ConfigError, match="parallel: " + needle):
        from_dict(ParallelConfig, data, "parallel")


def test_parallel_config_derives_dp_and_checks_the_world():
    assert ParallelConfig(tp=2, pp=2).dp(8) == 2
    with pytest.raises(ValueError, match="world size 6 is not divisible by tp\\*pp\\*cp"):
        ParallelConfig(tp=4).dp(6)


@pytest.mark.parametrize("kwargs,args,needle", [
    (dict(tp=3), (4, 12, 4, 0), "tp=3 must divide num_key_value_heads=4"),
    (dict(tp=2), (4, 12, 4, 0), None),
    (dict(tp=4), (4, 8, 2, 0), "tp=4 must divide num_key_value_heads=2"),
    (dict(pp=2, vpp=2), (6, 8, 8, 0), "pp\\*vpp=4 must divide num_hidden_layers=6"),
    (dict(ep=2), (4, 8, 8, 0), "ep=2 needs a mixture-of-experts model"),
    (dict(ep=3), (4, 8, 8, 4), "ep=3 must divide num_experts=4"),
    (dict(tp=2), (4, 8, 8, 4), "needs sequence_parallel"),
])
def test_parallel_config_checks_the_model(kwargs, args, needle):
    cfg = ParallelConfig(**kwargs)
    if needle is None:
        cfg.check_model(*args)
    else:
        with pytest.raises(ValueError, match=needle):
            cfg.check_model(*args)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_reads_its_transformers_config(family):
    adapter = adapter_for_config(_config(family))
    assert adapter.family == family
    assert adapter.padded_vocab == 256 and adapter.vocab_size == 250
    assert adapter.transformer_config_kwargs()["num_query_groups"] == 2


@pytest.mark.parametrize("family,key,value", [
    ("qwen2", "use_sliding_window", True),
    ("llama", "attention_bias", True),
    ("llama", "hidden_act", "gelu"),
    ("qwen3_moe", "mlp_only_layers", [0]),
    ("qwen3", "some_new_architecture_knob", 1),
])
def test_unsupported_architecture_fields_are_errors_naming_the_field(family, key, value):
    with pytest.raises(ValueError, match=key):
        adapter_for_config(_config(family, **{key: value}), source="ckpt/config.json")


def test_unknown_rope_type_and_model_type_are_refused():
    with pytest.raises(ValueError, match="rope type 'dynamic'"):
        adapter_for_config(_config("llama", rope_parameters={"rope_type": "dynamic", "factor": 2.0, "rope_theta": 1e4}))
    with pytest.raises(ValueError, match="model_type='gpt2'"):
        adapter_for_config({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]})


def test_fp8_without_transformer_engine_is_a_clear_error():
    if transformer_engine_available():
        pytest.skip("Transformer Engine is installed here")
    cfg = from_dict(ModelConfig, {"fp8": {"enabled": True, "recipe": "delayed"}}, "model")
    with pytest.raises(RuntimeError, match="model.fp8.enabled needs Transformer Engine"):
        choose_impl(cfg)
    assert choose_impl(ModelConfig()) == "local"


def test_routing_replay_on_a_dense_model_names_the_key():
    from megatron_mc.models.build import transformer_config

    with pytest.raises(ValueError, match="algo.routing_replay: true needs a mixture-of-experts model"):
        transformer_config(ModelConfig(), ParallelConfig(), adapter_for_config(_config("qwen3")), "local",
                           routing_replay=True)


def _round_trip(layout, hf, size, dim):
    shards = [layout.to_local(hf, r, size, dim) for r in range(size)]
    back = layout.to_hf(shards, dim)
    assert all(torch.equal(a, b) for a, b in zip(back, hf))
    return shards


@pytest.mark.parametrize("tp", [1, 2])
def test_qkv_layout_interleaves_query_groups_and_splits_by_group(tp):
    groups, per_group, head_dim, hidden = 2, 2, 3, 5
    q = torch.arange(groups * per_group * head_dim * hidden, dtype=torch.float32).view(-1, hidden)
    k = -torch.arange(groups * head_dim * hidden, dtype=torch.float32).view(-1, hidden) - 1
    v = 1000 + torch.arange(groups * head_dim * hidden, dtype=torch.float32).view(-1, hidden)
    shards = _round_trip(QKV(groups, per_group, head_dim), [q, k, v], tp, 0)
    first = shards[0]
    # Group 0 of rank 0 is [q heads 0..1, k head 0, v head 0].
    assert torch.equal(first[: per_group * head_dim], q[: per_group * head_dim])
    assert torch.equal(first[per_group * head_dim : (per_group + 1) * head_dim], k[:head_dim])
    _round_trip(QKV(groups, per_group, head_dim), [q[:, 0], k[:, 0], v[:, 0]], tp, 0)


def test_gate_up_layout_keeps_gate_and_up_halves_per_shard():
    gate, up = torch.arange(8.0).view(4, 2), 100 + torch.arange(8.0).view(4, 2)
    shards = _round_trip(GateUp(), [gate, up], 2, 0)
    assert torch.equal(shards[1], torch.cat([gate[2:], up[2:]]))


def test_vocab_layout_pads_with_zero_rows_and_unpads():
    table = torch.randn(5, 3)
    shards = _round_trip(Vocab(5, 8), [table], 2, 0)
    assert shards[1].shape == (4, 3) and torch.equal(shards[1][1:], torch.zeros(3, 3))
    _round_trip(Same(), [table], 1, None)


def test_adapter_base_maps_names_with_global_layer_indices():
    adapter = adapter_for_config(_config("qwen3"))
    rule, names = adapter.rule_for("decoder.layers.3.self_attention.linear_qkv.weight")
    assert isinstance(rule.layout, QKV)
    assert names == tuple(f"model.layers.3.self_attn.{p}_proj.weight" for p in "qkv")
    with pytest.raises(KeyError, match="no HF counterpart"):
        adapter.rule_for("decoder.layers.0.mlp.router.weight")
    assert isinstance(adapter, ModelAdapter)


def test_only_the_platform_entry_point_knows_the_cpu_layer():
    repo = Path(__file__).resolve().parents[2]
    users = [
        str(path.relative_to(repo))
        for folder in ("megatron_mc", "rollout", "judge", "tools", "benchmarks")
        for path in (repo / folder).rglob("*.py")
        if ("platform.cpu" in path.read_text() or "platform import cpu" in path.read_text())
        and path.parent.name != "platform"
    ]
    assert users == []


def test_fp8_settings_pass_through_to_megatron_fields():
    from megatron_mc.models.layer_spec import precision_kwargs

    cfg = from_dict(ModelConfig, {"dtype": "bfloat16", "fp8": {
        "enabled": True, "format": "e4m3", "recipe": "tensorwise", "amax_history_len": 16,
        "amax_compute_algo": "most_recent", "margin": 1, "bf16_layers_at_start": 1}}, "model")
    kwargs = precision_kwargs(cfg)
    assert kwargs["bf16"] and kwargs["params_dtype"] == torch.bfloat16
    assert (kwargs["fp8"], kwargs["fp8_recipe"], kwargs["fp8_amax_history_len"]) == ("e4m3", "tensorwise", 16)
    assert (kwargs["fp8_amax_compute_algo"], kwargs["fp8_margin"]) == ("most_recent", 1)
    assert kwargs["first_last_layers_bf16"] and kwargs["num_layers_at_start_in_bf16"] == 1
    assert "fp8" not in precision_kwargs(ModelConfig())
