"""A train rank hands its device memory to colocated engines and takes it back (issue 10, finding 3):
after offload (first keeping the weights for a weight update, then everything) and onload, two
data-parallel ranks with the distributed optimizer and overlapped gradient reduction and parameter
gathers take the same next RL step as ranks that never offloaded; computing while offloaded is refused
with a message that says to onload; the rehearsal's GPU memory ledger sees each rank's phases in order."""
from __future__ import annotations

import os
import re

import pytest

from megatron_mc.data.tiny_default import prepare_tiny_default
from megatron_mc.trainer.group import TrainGroup
from rollout.gpu_ledger import start_ledger

from scenarios import rl_batch, run_config
from rollout.local_ray import init_local_ray

pytestmark = [pytest.mark.distributed, pytest.mark.slow]

PHASE_BYTES = {"train": {"resident": 4.0, "weights": 1.0, "offloaded": 0.0, "training": 6.0}}


def _config():
    return run_config(world=2, distributed_optimizer=True, overlap_grad_reduce=True, overlap_param_gather=True)


def _steps(offload: bool) -> dict:
    """An RL step (it creates the optimizer state), optionally the colocated round trip, another RL step
    and the log-probs after it."""
    group = TrainGroup(_config(), str(prepare_tiny_default().hf_dir), cpus_per_rank=0.5)
    try:
        result = {"first": group.train(rl_batch(seed=0))}
        if offload:
            result["freed"] = {"keeping_weights": group._all("offload", keep_weights=True),  # a weight update
                               "weights": group._all("offload")}  # ... reads them between these two
            try:
                group.compute_logprobs(rl_batch(seed=2))
            except Exception as e:  # noqa: BLE001 - the rank's error, as Ray wraps it
                result["refused"] = str(e)
            group._all("onload")
        result["second"] = group.train(rl_batch(seed=1))
        result["logprobs"] = group.compute_logprobs(rl_batch(seed=2))
        return result
    finally:
        group.shutdown()


@pytest.fixture(scope="module")
def measured():
    os.environ["RAY_AUTH_MODE"] = "disabled"
    import ray

    # GPUs declared (none exist): Ray gives each rank a GPU id, which the ranks book in the ledger
    init_local_ray(num_cpus=2, num_gpus=2)
    try:
        plain = _steps(offload=False)
        ledger = start_ledger(1e12, PHASE_BYTES)
        offloaded = _steps(offload=True)
        history = ray.get(ledger.report.remote())["history"]
        ray.kill(ledger)
        return {"plain": plain, "offloaded": offloaded, "history": history}
    finally:
        ray.shutdown()


def test_a_step_after_offload_and_onload_equals_the_step_without(measured):
    plain, offloaded = measured["plain"], measured["offloaded"]
    for step in ("first", "second"):
        for key in ("loss", "pg_loss", "grad_norm", "approx_kl", "entropy", "lr"):
            assert offloaded[step][key] == pytest.approx(plain[step][key], rel=1e-6, abs=1e-9), (step, key)
    assert offloaded["logprobs"] == plain["logprobs"]


def test_offload_frees_the_optimizer_state_and_gradients_then_the_weights(measured):
    from megatron_mc.checkpoint.safetensors_dir import SafetensorsDir

    weights = SafetensorsDir(str(prepare_tiny_default().hf_dir))
    fp32_bytes = 4 * sum(weights.get(name).numel() for name in weights.names())
    freed = measured["offloaded"]["freed"]
    # every rank holds the whole fp32 gradient buffer and its half of Adam's moments, then the whole
    # parameter buffer (the distributed optimizer shards only the optimizer state)
    assert all(n >= 2 * fp32_bytes for n in freed["keeping_weights"]), (freed, fp32_bytes)
    assert all(n >= fp32_bytes for n in freed["weights"]), (freed, fp32_bytes)


def test_computing_while_offloaded_is_refused(measured):
    message = measured["offloaded"]["refused"]
    assert re.search(r"train rank \d: compute_logprobs while offloaded \('offloaded'", message), message
    assert "call onload() before computing" in message


def test_the_ledger_sees_each_rank_move_through_its_phases(measured):
    # old log-probs, then the optimizer steps; torch's allocator keeps what they reserved until the offload
    per_step = ["training"]
    expected = (["resident"] + per_step * 2 + ["weights", "offloaded", "resident"] + per_step * 2
                + per_step)
    for rank in (0, 1):
        prefix = f"train rank {rank} -> "
        phases = [entry[len(prefix):] for entry in measured["history"] if entry.startswith(prefix)]
        assert phases == expected, (rank, phases)
