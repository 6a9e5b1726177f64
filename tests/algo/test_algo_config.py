"""AlgoConfig and its presets: values, key-by-key overrides, and errors that name the key."""
import pytest

from megatron_mc.algo import PRESETS, AlgoConfig, algo_config_from_section, resolve_algo_config
from megatron_mc.typed_config import ConfigError, to_dict


def test_microcoder_grpo_preset_has_the_papers_settings():
    config = resolve_algo_config("microcoder_grpo", {})
    assert config.truncation_mask == "conditional"
    assert config.truncation_mask_rho == 0.1 and config.truncation_mask_repeat_window == 128
    assert config.kl_coef == 0.0 and not config.needs_reference_model
    assert config.eps_clip_high > config.eps_clip_low
    assert config.temperature_mode == "diversity"
    assert config.preset == "microcoder_grpo"


def test_dapo_preset_turns_on_its_four_techniques():
    config = resolve_algo_config("dapo", {})
    assert config.eps_clip_high == 0.28 and config.loss_agg_mode == "token-mean"
    assert config.dynamic_sampling and config.overlong_penalty


def test_grpo_preset_loads_a_reference_model():
    config = resolve_algo_config("grpo", {})
    assert config.kl_coef > 0 and config.needs_reference_model
    assert resolve_algo_config(None, {}) == AlgoConfig()


def test_overrides_apply_key_by_key_on_top_of_the_preset():
    config = resolve_algo_config("microcoder_grpo", {"truncation_mask_rho": 0.3, "eps_clip_high": "0.3"})
    assert config.truncation_mask_rho == 0.3 and config.eps_clip_high == 0.3
    assert config.truncation_mask == "conditional"  # the rest of the preset stays


def test_config_file_section_with_preset_key_round_trips():
    config = algo_config_from_section({"preset": "dapo", "kl_coef": 0.01})
    assert config.preset == "dapo" and config.kl_coef == 0.01 and config.needs_reference_model
    again = algo_config_from_section(to_dict(config))
    assert again == config


def test_unknown_key_is_named_with_the_nearest_valid_one():
    with pytest.raises(ConfigError, match=r"unknown key 'algo.eps_clip_hihg'; did you mean 'eps_clip_high'"):
        resolve_algo_config("microcoder_grpo", {"eps_clip_hihg": 0.3})


def test_unknown_preset_is_named_with_the_nearest():
    with pytest.raises(ConfigError, match=r"algo.preset: unknown preset 'microcoder'; did you mean 'microcoder_grpo'"):
        resolve_algo_config("microcoder", {})


@pytest.mark.parametrize("key, value, message", [
    ("truncation_mask_rho", 1.5, "truncation_mask_rho must be in"),
    ("eps_clip_low", 1.0, "eps_clip_low must be in"),
    ("dual_clip_c", 0.5, "dual_clip_c must be > 1"),
    ("temperature", 0.0, "temperature must be > 0"),
    ("icepop_high", 0.9, "icepop_low/icepop_high"),
    ("logprob_chunk_size", 0, "logprob_chunk_size must be >= 1"),
])
def test_out_of_range_values_name_the_key(key, value, message):
    with pytest.raises(ConfigError, match=f"algo: {message}"):
        resolve_algo_config("grpo", {key: value})


def test_wrong_literal_is_refused_from_files_and_from_code():
    with pytest.raises(ConfigError, match=r"algo.loss_agg_mode: 'token_mean' is not one of .*did you mean 'token-mean'"):
        resolve_algo_config("grpo", {"loss_agg_mode": "token_mean"})
    with pytest.raises(ValueError, match="advantage_estimator must be one of"):
        AlgoConfig(advantage_estimator="ppo")


def test_preset_field_set_directly_must_name_a_preset():
    with pytest.raises(ValueError, match="preset must be one of"):
        AlgoConfig(preset="microcoder")


def test_every_preset_resolves():
    for name in PRESETS:
        assert resolve_algo_config(name, {}).preset == name
