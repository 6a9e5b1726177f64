"""Zig-zag split helpers (the layout Megatron-Core's get_batch_on_this_cp_rank uses)."""
import pytest
import torch

from megatron_mc.algo import zigzag_indices, zigzag_merge, zigzag_split


def test_rank_r_holds_chunks_r_and_2cp_minus_1_minus_r():
    assert zigzag_indices(8, 2, 0).tolist() == [0, 1, 6, 7]
    assert zigzag_indices(8, 2, 1).tolist() == [2, 3, 4, 5]
    assert zigzag_indices(12, 3, 1).tolist() == [2, 3, 8, 9]


def test_merge_inverts_split_along_any_dimension():
    x = torch.arange(2 * 12 * 3).view(2, 12, 3)
    for cp in (1, 2, 3):
        parts = [zigzag_split(x, cp, r, dim=1) for r in range(cp)]
        assert torch.equal(zigzag_merge(parts, dim=1), x)


def test_length_not_a_multiple_of_2cp_says_to_pad():
    with pytest.raises(ValueError, match="multiple of 2 \\* cp_size = 4; pad"):
        zigzag_indices(10, 2, 0)
