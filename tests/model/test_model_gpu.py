"""The single-rank checks on a CUDA device: Megatron-Core (fp32) log-probs equal HF's for every family,
HF -> Megatron -> HF stays bit-identical, RoPE scaling matches HF beyond the original window."""
import pytest

from model_tiny import FAMILIES
from model_workers import launch

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    return launch("single", 1, tmp_path_factory.mktemp("single-cuda"), cuda=True)


def test_cpu_layer_is_not_loaded_on_cuda(measured):
    assert measured["cpu_layer_loaded"] is False


@pytest.mark.parametrize("family", FAMILIES)
def test_log_probs_match_hf_on_cuda(measured, family):
    assert measured[f"logprob_diff/{family}"] < 1e-4


@pytest.mark.parametrize("family", [*FAMILIES, "llama-bf16"])
def test_round_trip_is_bit_identical_on_cuda(measured, family):
    assert measured[f"roundtrip/{family}"] == []


@pytest.mark.parametrize("rope_type", ["yarn", "llama3"])
def test_rope_scaling_matches_hf_on_cuda(measured, rope_type):
    assert measured[f"rope_diff/{rope_type}"] < 1e-4
