"""DAPO's soft over-long penalty against hand-computed values."""
import pytest
import torch

from megatron_mc.algo import overlong_penalty, shape_rewards


def test_penalty_is_zero_before_the_buffer_linear_inside_and_minus_factor_beyond():
    # L_max 100, buffer 20: free up to 80, then -(|y| - 80) / 20, -1 past 100
    got = overlong_penalty([10, 80, 85, 90, 100, 120], max_length=100, buffer_length=20, factor=1.0)
    torch.testing.assert_close(got, torch.tensor([0.0, 0.0, -0.25, -0.5, -1.0, -1.0]))
    half = overlong_penalty([90], max_length=100, buffer_length=20, factor=0.5)
    torch.testing.assert_close(half, torch.tensor([-0.25]))


def test_shape_rewards_adds_the_penalty():
    got = shape_rewards([1.0, 1.0, 0.0], [50, 95, 100], max_length=100, buffer_length=20)
    torch.testing.assert_close(got, torch.tensor([1.0, 0.25, -1.0]))


def test_buffer_longer_than_budget_is_refused():
    with pytest.raises(ValueError, match="buffer_length"):
        overlong_penalty([1], max_length=10, buffer_length=11)
