"""Advantage estimators against values computed by hand on two small groups."""
import math

import pytest
import torch

from megatron_mc.algo import ESTIMATORS, compute_advantages

# group "a" = [1, 0, 0, 1] (mean 0.5, unbiased std sqrt(1/3)), group "b" = [0.5, 0.5, 0.5], interleaved
REWARDS = torch.tensor([1.0, 0.5, 0.0, 0.5, 0.0, 0.5, 1.0])
GROUPS = ["a", "b", "a", "b", "a", "b", "a"]
A = [0, 2, 4, 6]
B = [1, 3, 5]


def expect(values_a, values_b=(0.0, 0.0, 0.0)):
    out = torch.zeros(7)
    out[A] = torch.tensor(values_a)
    out[B] = torch.tensor(values_b)
    return out


@pytest.mark.parametrize("estimator, expected", [
    ("grpo", expect([0.5 / math.sqrt(1 / 3), -0.5 / math.sqrt(1 / 3), -0.5 / math.sqrt(1 / 3), 0.5 / math.sqrt(1 / 3)])),
    ("grpo_no_std", expect([0.5, -0.5, -0.5, 0.5])),
    # r_i minus the mean of the other three: 1 - 1/3, 0 - 2/3
    ("rloo", expect([2 / 3, -2 / 3, -2 / 3, 2 / 3])),
    # centred [.5, 0, -.5, 0, -.5, 0, .5] whitened over the batch: unbiased std sqrt(1/6)
    ("reinforce_pp_baseline", expect([0.5 * math.sqrt(6), -0.5 * math.sqrt(6), -0.5 * math.sqrt(6), 0.5 * math.sqrt(6)])),
])
def test_estimator_matches_hand_computed_values(estimator, expected):
    got = compute_advantages(REWARDS, GROUPS, estimator)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_group_ids_as_tensor_or_list_give_the_same_advantages():
    as_tensor = compute_advantages(REWARDS, torch.tensor([7, 3, 7, 3, 7, 3, 7]), "grpo")
    as_list = compute_advantages(REWARDS, GROUPS, "grpo")
    torch.testing.assert_close(as_tensor, as_list)


def test_grpo_passk_gives_only_the_best_sample_the_gap_to_the_second_over_the_std():
    rewards = torch.tensor([0.2, 0.9, 0.5, 1.0, 0.0])
    got = compute_advantages(rewards, [0, 0, 0, 1, 1], "grpo_passk")
    std_first = torch.tensor([0.2, 0.9, 0.5]).std().item()  # 0.351188
    std_second = torch.tensor([1.0, 0.0]).std().item()
    expected = torch.tensor([0.0, 0.4 / std_first, 0.0, 1.0 / std_second, 0.0])
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_grpo_passk_tie_for_best_gives_everyone_zero_and_singletons_are_refused():
    assert compute_advantages(torch.tensor([1.0, 0.0, 1.0]), [0, 0, 0], "grpo_passk").abs().sum() == 0
    with pytest.raises(ValueError, match="at least 2 samples per group"):
        compute_advantages(torch.tensor([1.0, 0.0]), [0, 1], "grpo_passk")


def test_groups_of_one_get_zero_rather_than_nan():
    for estimator in ("grpo", "grpo_no_std", "rloo"):
        got = compute_advantages(torch.tensor([1.0, 0.0, 1.0]), [0, 1, 1], estimator)
        assert got[0] == 0 and torch.isfinite(got).all(), estimator


def test_difficulty_rescale_multiplies_by_one_minus_group_success_rate():
    # group a solves 2 of 4 (weight 0.5); group b never reaches the threshold 1.0 (weight 1, advantages 0)
    got = compute_advantages(REWARDS, GROUPS, "grpo_no_std", difficulty_rescale=True)
    torch.testing.assert_close(got, expect([0.25, -0.25, -0.25, 0.25]))
    # with a lower threshold group b is all solved, and group a is too: everything is weighted 0
    assert compute_advantages(REWARDS, GROUPS, "grpo_no_std", difficulty_rescale=True,
                              success_threshold=0.0).abs().sum() == 0


def test_entropy_rescale_multiplies_by_entropy_over_group_mean():
    entropies = torch.zeros(7)
    entropies[A] = torch.tensor([1.0, 2.0, 3.0, 2.0])  # group mean 2 -> weights .5, 1, 1.5, 1
    got = compute_advantages(REWARDS, GROUPS, "grpo_no_std", entropies=entropies)
    torch.testing.assert_close(got, expect([0.25, -0.5, -0.75, 0.5]))


def test_unknown_estimator_and_mismatched_lengths_are_named():
    with pytest.raises(ValueError, match="unknown advantage estimator 'grpoo'"):
        compute_advantages(REWARDS, GROUPS, "grpoo")
    with pytest.raises(ValueError, match="7 rewards but 6 group ids"):
        compute_advantages(REWARDS, GROUPS[:6], "grpo")


def test_registry_lists_exactly_the_documented_estimators():
    assert set(ESTIMATORS) == {"grpo", "grpo_no_std", "rloo", "reinforce_pp_baseline", "grpo_passk"}
