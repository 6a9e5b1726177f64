"""Named algorithm presets, overridable key by key (`algo.preset: microcoder_grpo` in the run config).

A preset is a partial AlgoConfig as a dict; what it leaves out keeps AlgoConfig's defaults (`grpo`).
"""
from __future__ import annotations

import difflib
from typing import Any

from megatron_mc.algo.config import AlgoConfig
from megatron_mc.typed_config import ConfigError, from_dict

PRESETS: dict[str, dict[str, Any]] = {
    # DeepSeekMath's GRPO: group-normalized advantages, symmetric clip, k3 KL to a reference model
    "grpo": {},
    # DAPO (arXiv 2503.14476): clip-higher, token-level loss, dynamic sampling, soft over-long punishment
    "dapo": {
        "eps_clip_high": 0.28,
        "loss_agg_mode": "token-mean",
        "dynamic_sampling": True,
        "overlong_penalty": True,
        "kl_coef": 0.0,
    },
    # MicroCoder-GRPO (arXiv 2603.07777): conditional truncation mask, no KL, higher upper clip, and the
    # training temperature chosen from output diversity
    "microcoder_grpo": {
        "truncation_mask": "conditional",
        "truncation_mask_rho": 0.1,
        "truncation_mask_repeat_window": 128,
        "kl_coef": 0.0,
        "eps_clip_high": 0.28,
        "loss_agg_mode": "token-mean",
        "temperature_mode": "diversity",
    },
}


def resolve_algo_config(preset: str | None, overrides: dict[str, Any] | None = None,
                        where: str = "algo") -> AlgoConfig:
    """The preset's settings (or the defaults, for None) with `overrides` applied on top, validated."""
    if preset is not None and preset not in PRESETS:
        close = difflib.get_close_matches(str(preset), list(PRESETS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"{where}.preset: unknown preset {preset!r}{hint} (presets: {', '.join(PRESETS)})")
    overrides = dict(overrides or {})
    if "preset" in overrides:
        raise ConfigError(f"{where}.preset: give the preset as the `preset` argument, not among the overrides")
    merged = {**PRESETS.get(preset, {}), **overrides, "preset": preset}
    return from_dict(AlgoConfig, merged, where)


def algo_config_from_section(section: dict[str, Any] | None, where: str = "algo") -> AlgoConfig:
    """Build from a config-file section: its optional `preset` key plus any other AlgoConfig keys."""
    section = dict(section or {})
    preset = section.pop("preset", None)
    if preset is not None and not isinstance(preset, str):
        raise ConfigError(f"{where}.preset: expected a preset name, got {preset!r}")
    return resolve_algo_config(preset, section, where)
