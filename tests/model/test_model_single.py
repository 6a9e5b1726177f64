"""One Megatron-Core rank on CPU: every family matches HF log-probs (fp32, < 1e-4), HF -> Megatron -> HF is
bit-identical (fp32 and bf16), checkpoints with missing or unexpected tensors are refused by name, and RoPE
scaling (YaRN, llama3) matches HF at 3x the window."""
import pytest

from model_tiny import FAMILIES
from model_workers import launch


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    return launch("single", 1, tmp_path_factory.mktemp("single"))


def test_cpu_layer_is_what_runs_megatron_here(measured):
    assert measured["cpu_layer_loaded"] is True


@pytest.mark.parametrize("family", FAMILIES)
def test_log_probs_match_hf(measured, family):
    assert measured[f"logprob_diff/{family}"] < 1e-4


@pytest.mark.parametrize("family", [*FAMILIES, "llama-bf16"])
def test_hf_megatron_hf_round_trip_is_bit_identical(measured, family):
    assert measured[f"roundtrip/{family}"] == []


@pytest.mark.parametrize("label,tensor", [("unexpected", "model.extra.weight"), ("missing", "model.norm.weight")])
def test_checkpoint_with_wrong_tensors_is_refused_by_name(measured, label, tensor):
    message = measured[f"mismatch/{label}"]
    assert label in message and tensor in message


@pytest.mark.parametrize("rope_type", ["yarn", "llama3"])
def test_rope_scaling_matches_hf_beyond_the_original_window(measured, rope_type):
    assert measured[f"rope_diff/{rope_type}"] < 1e-4
    # Without the scaling the same weights give other log-probs: the comparison can tell them apart.
    assert measured[f"rope_unscaled_diff/{rope_type}"] > 1e-3
