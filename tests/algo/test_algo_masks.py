"""MicroCoder's conditional truncation mask on crafted samples, one per condition, and its baselines."""
import pytest
import torch

from megatron_mc.algo import (JudgedBatch, compute_sample_advantages, conditional_truncation_mask, ends_in_repeat,
                              filter_zero_variance_groups, mask_all_truncated, resolve_algo_config)

L_MAX = 300
M = 128


def distinct(n, start=0):
    return list(range(start, start + n))


def looping(n):
    """n tokens whose last M repeat the M before them."""
    block = distinct(M, start=1000)
    return distinct(n - 2 * M) + block + block


# each sample breaks exactly one of the four conditions, except the first which meets all of them
SAMPLES = {
    "all four hold": dict(length=L_MAX, non_incorrect=True, tokens=distinct(L_MAX)),
    "below max length": dict(length=L_MAX - 1, non_incorrect=True, tokens=distinct(L_MAX - 1)),
    "shown incorrect": dict(length=L_MAX, non_incorrect=False, tokens=distinct(L_MAX)),
    "ends in a repeat": dict(length=L_MAX, non_incorrect=True, tokens=looping(L_MAX)),
}


def crafted_mask(rho, seed=0):
    samples = list(SAMPLES.values())
    return conditional_truncation_mask([s["length"] for s in samples], L_MAX, [s["non_incorrect"] for s in samples],
                                       [s["tokens"] for s in samples], rho=rho, m=M,
                                       generator=torch.Generator().manual_seed(seed))


def test_with_rho_one_only_the_sample_meeting_all_four_conditions_is_masked():
    mask = crafted_mask(rho=1.0)
    assert mask.masked.tolist() == [True, False, False, False]
    assert mask.keep.tolist() == [False, True, True, True]
    assert mask.masked_fraction == 0.25


def test_with_rho_zero_nothing_is_masked():
    assert not crafted_mask(rho=0.0).masked.any()


def test_the_draw_is_one_uniform_per_sample_from_the_generator():
    n = 4000
    kwargs = dict(response_lengths=[L_MAX] * n, max_length=L_MAX, non_incorrect=[True] * n,
                  response_token_ids=[distinct(L_MAX)] * n, rho=0.1, m=M)
    mask = conditional_truncation_mask(**kwargs, generator=torch.Generator().manual_seed(7))
    draws = torch.rand(n, generator=torch.Generator().manual_seed(7))
    assert torch.equal(mask.masked, draws < 0.1)
    assert 0.08 < mask.masked_fraction < 0.12
    again = conditional_truncation_mask(**kwargs, generator=torch.Generator().manual_seed(7))
    assert torch.equal(mask.masked, again.masked)
    other = conditional_truncation_mask(**kwargs, generator=torch.Generator().manual_seed(8))
    assert not torch.equal(mask.masked, other.masked)


def test_repeat_compares_the_last_m_tokens_with_the_m_before():
    assert ends_in_repeat(looping(2 * M), M)
    assert ends_in_repeat(torch.tensor(looping(2 * M + 5)), M)
    assert not ends_in_repeat(looping(2 * M)[1:], M)  # too short: fewer than 2m tokens
    broken = looping(2 * M + 5)
    broken[-M] += 1  # first token of the last window differs
    assert not ends_in_repeat(broken, M)
    assert ends_in_repeat([5, 6, 5, 6], 2) and not ends_in_repeat([5, 6, 6, 5], 2)


def test_mismatched_inputs_and_bad_rho_are_refused():
    with pytest.raises(ValueError, match="one of each per sample"):
        conditional_truncation_mask([L_MAX, L_MAX], L_MAX, [True], [[1], [2]], rho=0.1)
    with pytest.raises(ValueError, match="rho must be in"):
        conditional_truncation_mask([L_MAX], L_MAX, [True], [[1]], rho=1.5)


def test_mask_all_truncated_masks_every_sample_at_the_budget():
    mask = mask_all_truncated([300, 299, 300, 12], 300)
    assert mask.masked.tolist() == [True, False, True, False]


def test_dynamic_sampling_keeps_only_groups_whose_rewards_differ():
    keep = filter_zero_variance_groups([1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.5], ["a", "a", "b", "b", "c", "c", "d"])
    assert keep.tolist() == [False, False, True, True, False, False, False]


def test_group_statistics_use_the_whole_group_before_masking():
    # one prompt, G = 4: an AC answer; a response cut off at L_max before its program finished (reward 0,
    # non-incorrect: it is the one masked); two wrong answers
    config = resolve_algo_config("microcoder_grpo", {"truncation_mask_rho": 1.0})
    batch = JudgedBatch(rewards=[1.0, 0.0, 0.0, 0.0], group_ids=[0, 0, 0, 0],
                        response_lengths=[120, L_MAX, 90, 200], max_length=L_MAX,
                        non_incorrect=[True, True, False, False],
                        response_token_ids=[distinct(120), distinct(L_MAX), distinct(90), distinct(200)])
    result = compute_sample_advantages(batch, config, generator=torch.Generator().manual_seed(0))
    # whole group: mean 0.25, unbiased std 0.5 -> [1.5, -0.5 (masked to 0), -0.5, -0.5]; over the three
    # unmasked samples it would have been mean 1/3, std sqrt(1/3) -> [1.155, 0, -0.577, -0.577]
    torch.testing.assert_close(result.advantages, torch.tensor([1.5, 0.0, -0.5, -0.5]), rtol=1e-5, atol=1e-5)
    assert result.truncation.masked.tolist() == [False, True, False, False]
    assert result.metrics()["truncation_masked_fraction"] == 0.25


def test_pipeline_strategies_follow_the_config():
    batch = JudgedBatch(rewards=[1.0, 0.0, 1.0, 1.0], group_ids=[0, 0, 1, 1], response_lengths=[50, 100, 100, 20],
                        max_length=100, non_incorrect=[True, False, True, True],
                        response_token_ids=[distinct(50), distinct(100), distinct(100), distinct(20)])
    mask_all = compute_sample_advantages(batch, resolve_algo_config("grpo", {"truncation_mask": "all"}))
    assert mask_all.truncation.masked.tolist() == [False, True, True, False]
    assert mask_all.advantages[1] == 0 and mask_all.advantages[0] > 0
    dapo = compute_sample_advantages(batch, resolve_algo_config("dapo", {"overlong_buffer_length": 50}))
    # over-long shaping: length 100 at L_max 100 -> -1; length 50 -> 0; group 1 [0, 1] now differs
    torch.testing.assert_close(dapo.rewards, torch.tensor([1.0, -1.0, 0.0, 1.0]))
    # dynamic sampling judges the outcome rewards: group 1 solved both times, so it is dropped
    assert dapo.informative.tolist() == [True, True, False, False]
    assert not compute_sample_advantages(batch, resolve_algo_config("grpo")).truncation.masked.any()
