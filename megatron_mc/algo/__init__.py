"""The RL algorithm family: advantage estimators, sample masks, reward shaping, the policy loss, and
vocab-parallel log-probs / entropy; configured by AlgoConfig and its named presets."""
from megatron_mc.algo.advantages import ESTIMATORS, compute_advantages
from megatron_mc.algo.config import AlgoConfig
from megatron_mc.algo.context_parallel import zigzag_indices, zigzag_merge, zigzag_split
from megatron_mc.algo.kl import KL_ESTIMATORS, kl_penalty
from megatron_mc.algo.logprobs import vocab_parallel_logprobs_and_entropy
from megatron_mc.algo.masks import (SampleMask, conditional_truncation_mask, ends_in_repeat,
                                    filter_zero_variance_groups, mask_all_truncated)
from megatron_mc.algo.policy_loss import policy_loss
from megatron_mc.algo.presets import PRESETS, algo_config_from_section, resolve_algo_config
from megatron_mc.algo.reward_shaping import overlong_penalty, shape_rewards
from megatron_mc.algo.sample_advantages import AdvantageResult, JudgedBatch, compute_sample_advantages

__all__ = [
    "ESTIMATORS", "KL_ESTIMATORS", "PRESETS", "AdvantageResult", "AlgoConfig", "JudgedBatch", "SampleMask",
    "algo_config_from_section", "compute_advantages", "compute_sample_advantages", "conditional_truncation_mask",
    "ends_in_repeat", "filter_zero_variance_groups", "kl_penalty", "mask_all_truncated", "overlong_penalty",
    "policy_loss", "resolve_algo_config", "shape_rewards", "vocab_parallel_logprobs_and_entropy",
    "zigzag_indices", "zigzag_merge", "zigzag_split",
]
