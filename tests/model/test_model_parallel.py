"""Two gloo ranks: TP=2 (with and without sequence parallel), PP=2, PP=2 with virtual stages, CP=2 and EP=2
give the log-probs of TP=1 and of HF, and on four ranks so do CP=2 with TP=2 + SP and CP=2 with PP=2; export
from each layout is bit-identical to the HF checkpoint; a dist checkpoint saved under TP=2 (EP=2 for MoE)
loads under TP=1, PP=2 and TP=2+SP with the same loss.
Training through the DDP and optimizer wrappers: data-parallel replicas (plain and distributed
optimizer with overlapped reduction) stay identical and learn; TP=2 with sequence parallelism follows
the TP=1 losses step by step (norm gradients reduced across TP)."""
import pytest
import torch

from model_tiny import FAMILIES
from model_workers import FOUR_RANK_LAYOUTS, launch, layouts_for

pytestmark = [pytest.mark.distributed, pytest.mark.slow]


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    return launch("parallel", 2, tmp_path_factory.mktemp("parallel"))


@pytest.mark.parametrize("family", FAMILIES)
def test_every_layout_gives_the_tp1_and_hf_log_probs(measured, family):
    tp1 = torch.tensor(measured[f"tp1/{family}/logprobs"])
    assert measured[f"tp1/{family}/vs_hf"] < 1e-4
    for layout in layouts_for(family):
        assert measured[f"{layout}/{family}/vs_hf"] < 1e-4, layout
        other = torch.tensor(measured[f"{layout}/{family}/logprobs"])
        assert (other - tp1).abs().max().item() < 1e-5, layout


@pytest.mark.parametrize("family", FAMILIES)
def test_export_from_every_layout_is_bit_identical(measured, family):
    for layout in layouts_for(family):
        assert measured[f"{layout}/{family}/roundtrip"] == [], layout


@pytest.mark.parametrize("family", ["qwen3", "qwen3_moe"])
@pytest.mark.parametrize("layout", ["tp1", "pp2", "tp2_sp"])
def test_dist_checkpoint_reshards_with_the_same_loss(measured, family, layout):
    loss = measured[f"ckpt/{family}/{layout}/loss"]
    assert abs(loss - measured[f"ckpt/{family}/{layout}/hf_loss"]) < 1e-5
    # The model was randomly initialised before loading: the checkpoint, not the init, gave the loss.
    assert abs(loss - measured[f"ckpt/{family}/{layout}/random_loss"]) > 1e-3


def test_a_checkpoint_save_leaves_no_process_behind(measured):
    # Megatron's writer would otherwise start a multiprocessing Manager per rank on its first save (seconds
    # of every first checkpoint) that lives as long as the rank
    for family in ("qwen3", "qwen3_moe"):
        for rank in (0, 1):
            assert measured[f"ckpt/{family}/processes_left_by_save/r{rank}"] == []


@pytest.mark.parametrize("layout", ["dp2", "dp2_distopt"])
def test_data_parallel_replicas_stay_identical_and_learn(measured, layout):
    assert measured[f"{layout}/dp"] == 2
    first, second = measured[f"{layout}/checksums"]
    assert first == second
    for rank in (0, 1):
        losses = measured[f"{layout}/losses/r{rank}"]
        assert losses[-1] < losses[0] - 0.1


def test_distributed_optimizer_ranks_saw_different_data(measured):
    assert measured["dp2_distopt/losses/r0"][0] != measured["dp2_distopt/losses/r1"][0]


def test_tensor_and_sequence_parallel_steps_follow_tp1(measured):
    reference = measured["dp2/losses/r0"]
    for rank in (0, 1):
        steps = measured[f"tp2_sp/losses/r{rank}"]
        assert max(abs(a - b) for a, b in zip(steps, reference)) < 1e-4


@pytest.fixture(scope="module")
def measured_on_four(tmp_path_factory):
    return launch("four", 4, tmp_path_factory.mktemp("four"))


@pytest.mark.parametrize("family", ["qwen3", "qwen3_moe"])
@pytest.mark.parametrize("layout", sorted(FOUR_RANK_LAYOUTS))
def test_context_parallel_with_tensor_or_pipeline_parallel_gives_the_hf_log_probs(measured_on_four, layout, family):
    assert measured_on_four[f"{layout}/{family}/vs_hf"] < 1e-4
