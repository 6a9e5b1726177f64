"""AlgoConfig: every knob of the RL algorithm, a plain dataclass built by megatron_mc.typed_config.

Field defaults are the `grpo` preset; `presets.py` names the others. The driver composes this as the
`algo:` section of the run config (`algo.preset: microcoder_grpo` plus key-by-key overrides).
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Literal, Optional

AdvantageEstimatorName = Literal["grpo", "grpo_no_std", "rloo", "reinforce_pp_baseline", "grpo_passk"]
TruncationMaskName = Literal["none", "all", "conditional"]
LossAggMode = Literal["token-mean", "seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm"]
RatioLevel = Literal["token", "sequence"]
RolloutCorrection = Literal["none", "tis", "icepop"]
KlEstimatorName = Literal["k1", "k2", "k3"]
TemperatureMode = Literal["fixed", "diversity"]


@dataclass
class AlgoConfig:
    # which preset this was resolved from (recorded so the written run config says so); None: defaults
    preset: Optional[str] = None

    # advantages (advantages.py)
    advantage_estimator: AdvantageEstimatorName = "grpo"
    advantage_eps: float = 1e-6
    difficulty_rescale: bool = False
    success_threshold: float = 1.0  # a reward at or above this counts as solved, for difficulty_rescale
    entropy_rescale: bool = False

    # sample masks (masks.py); m is the repeat window of the conditional mask
    truncation_mask: TruncationMaskName = "none"
    truncation_mask_rho: float = 0.1
    truncation_mask_repeat_window: int = 128
    dynamic_sampling: bool = False

    # reward shaping (reward_shaping.py)
    overlong_penalty: bool = False
    overlong_buffer_length: int = 4096
    overlong_penalty_factor: float = 1.0

    # policy loss (policy_loss.py)
    eps_clip_low: float = 0.2
    eps_clip_high: float = 0.2
    dual_clip_c: Optional[float] = None
    ratio_level: RatioLevel = "token"
    loss_agg_mode: LossAggMode = "seq-mean-token-mean"
    loss_norm_length: Optional[int] = None  # seq-mean-token-sum-norm's constant; None: the padded length
    rollout_correction: RolloutCorrection = "none"
    tis_cap: float = 2.0
    icepop_low: float = 0.5
    icepop_high: float = 5.0
    kl_coef: float = 0.001
    kl_estimator: KlEstimatorName = "k3"
    entropy_coef: float = 0.0

    # log-probs at the training temperature (logprobs.py); temperature_mode "diversity" lets the
    # temperature controller choose it from output diversity, and this field then holds the start value
    temperature: float = 1.0
    temperature_mode: TemperatureMode = "fixed"
    logprob_chunk_size: int = 512

    # routing replay (R3), mixture-of-experts models only: the engine returns the experts it routed each token
    # to and the trainer's forwards (old log-probs and training) route the same way (trainer/routing_replay.py)
    routing_replay: bool = False

    def __post_init__(self) -> None:
        from megatron_mc.algo.presets import PRESETS  # presets.py builds on this module

        _check(self.preset is None or self.preset in PRESETS, "preset", self.preset,
               f"one of {sorted(PRESETS)} (or null)")
        _check_literals(self)
        _check(0.0 <= self.eps_clip_low < 1.0, "eps_clip_low", self.eps_clip_low, "in [0, 1)")
        _check(self.eps_clip_high >= 0.0, "eps_clip_high", self.eps_clip_high, ">= 0")
        _check(self.dual_clip_c is None or self.dual_clip_c > 1.0, "dual_clip_c", self.dual_clip_c,
               "> 1 (or null to turn dual clip off)")
        _check(self.advantage_eps > 0.0, "advantage_eps", self.advantage_eps, "> 0")
        _check(0.0 <= self.truncation_mask_rho <= 1.0, "truncation_mask_rho", self.truncation_mask_rho, "in [0, 1]")
        _check(self.truncation_mask_repeat_window >= 1, "truncation_mask_repeat_window",
               self.truncation_mask_repeat_window, ">= 1")
        _check(self.overlong_buffer_length >= 1, "overlong_buffer_length", self.overlong_buffer_length, ">= 1")
        _check(self.overlong_penalty_factor >= 0.0, "overlong_penalty_factor", self.overlong_penalty_factor, ">= 0")
        _check(self.loss_norm_length is None or self.loss_norm_length >= 1, "loss_norm_length",
               self.loss_norm_length, ">= 1 (or null for the padded length)")
        _check(self.tis_cap > 0.0, "tis_cap", self.tis_cap, "> 0")
        _check(0.0 <= self.icepop_low < 1.0 < self.icepop_high, "icepop_low/icepop_high",
               (self.icepop_low, self.icepop_high), "0 <= icepop_low < 1 < icepop_high")
        _check(self.kl_coef >= 0.0, "kl_coef", self.kl_coef, ">= 0")
        _check(self.entropy_coef >= 0.0, "entropy_coef", self.entropy_coef, ">= 0")
        _check(self.temperature > 0.0, "temperature", self.temperature, "> 0")
        _check(self.logprob_chunk_size >= 1, "logprob_chunk_size", self.logprob_chunk_size, ">= 1")

    @property
    def needs_reference_model(self) -> bool:
        """A reference policy is loaded only when the KL loss is on."""
        return self.kl_coef > 0.0


def _check(ok: bool, key: str, value: object, expected: str) -> None:
    if not ok:
        raise ValueError(f"{key} must be {expected}, got {value!r}")


def _check_literals(config: AlgoConfig) -> None:
    # from_dict checks Literal fields already; this covers AlgoConfig(...) built directly in code
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        tp = hints[field.name]
        if typing.get_origin(tp) is Literal and getattr(config, field.name) not in typing.get_args(tp):
            raise ValueError(f"{field.name} must be one of {list(typing.get_args(tp))}, "
                             f"got {getattr(config, field.name)!r}")
