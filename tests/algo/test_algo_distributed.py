"""Two gloo ranks on loopback: tensor-parallel log-probs / entropy, context-parallel loss invariance and
metrics reduced over the CP group.

The two ranks are spawned once for all checks (a module-scoped fixture); the tests compare what the
ranks wrote with the single-process computation.
"""
import socket

import pytest
import torch
import torch.multiprocessing as mp

import algo_dist_workers
from megatron_mc.algo import policy_loss, resolve_algo_config, vocab_parallel_logprobs_and_entropy, zigzag_merge
from megatron_mc.algo.context_parallel import metric_values

pytestmark = pytest.mark.distributed

TP_DTYPES = [torch.float64, torch.float32]

CP_SCENARIOS = {
    "microcoder_token_mean": {"preset": "microcoder_grpo", "overrides": {"temperature": 0.7}},
    "grpo_seq_mean_token_mean_k3_kl": {"preset": "grpo", "overrides": {"kl_coef": 0.05}},
    "gspo_sequence_ratio": {"preset": "grpo", "overrides": {"ratio_level": "sequence", "kl_coef": 0.0,
                                                          "eps_clip_low": 0.05, "eps_clip_high": 0.05}},
    "dr_grpo_token_sum_norm_entropy_bonus": {"preset": "grpo", "overrides": {
        "loss_agg_mode": "seq-mean-token-sum-norm", "kl_coef": 0.0, "entropy_coef": 0.01}},
    "seq_mean_token_sum_dual_clip": {"preset": "grpo", "overrides": {
        "loss_agg_mode": "seq-mean-token-sum", "kl_coef": 0.0, "dual_clip_c": 1.2}},
}


@pytest.fixture(scope="module")
def rank_results(tmp_path_factory, cp_inputs):
    out = tmp_path_factory.mktemp("two_ranks")
    torch.save(cp_inputs, out / "cp_inputs.pt")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(algo_dist_workers.run_checks, args=(2, port, str(out), TP_DTYPES, CP_SCENARIOS), nprocs=2, join=True)
    return out


@pytest.mark.parametrize("dtype", TP_DTYPES)
def test_tensor_parallel_values_and_gradients_equal_the_naive_full_vocabulary(rank_results, dtype):
    torch.manual_seed(0)  # the workers' inputs
    logits = (torch.randn(3, 11, 40, dtype=dtype) * 3).requires_grad_(True)
    targets = torch.randint(0, 40, (3, 11))
    weights = torch.randn(2, 3, 11, dtype=dtype)
    log_p = torch.log_softmax(logits / 0.8, dim=-1)
    logprobs = log_p.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    entropy = -(log_p.exp() * log_p).sum(-1)
    (logprobs * weights[0] + entropy * weights[1]).sum().backward()

    tol = dict(rtol=1e-10, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-6)
    ranks = [torch.load(rank_results / f"tp_{dtype}_{r}.pt") for r in range(2)]
    for rank in ranks:  # every rank ends with the full-vocabulary values
        torch.testing.assert_close(rank["logprobs"], logprobs.detach(), **tol)
        torch.testing.assert_close(rank["entropy"], entropy.detach(), **tol)
    torch.testing.assert_close(torch.cat([r["grad"] for r in ranks], dim=-1), logits.grad, **tol)


@pytest.fixture(scope="module")
def cp_inputs():
    torch.manual_seed(1)
    batch, seq, vocab = 3, 12, 29  # seq is a multiple of 2 * cp
    logits = torch.randn(batch, seq, vocab, dtype=torch.float64)
    targets = torch.randint(0, vocab, (batch, seq))
    current, _ = vocab_parallel_logprobs_and_entropy(logits, targets)
    return {
        "logits": logits,
        "targets": targets,
        # near the current policy, so some tokens are clipped and some are not
        "old_logprobs": current + 0.3 * torch.randn(batch, seq, dtype=torch.float64),
        "ref_logprobs": current + 0.3 * torch.randn(batch, seq, dtype=torch.float64),
        "advantages": torch.tensor([1.0, -0.5, 2.0], dtype=torch.float64),
        # ragged responses: row 1 ends inside the second rank's first chunk, row 2 in rank 1's second chunk
        "mask": (torch.arange(seq)[None, :] < torch.tensor([[12], [7], [10]])).to(torch.float64),
        # below the current policy everywhere: every ratio > 1
        "old_logprobs_below": current - 0.1 - 0.1 * torch.rand(batch, seq, dtype=torch.float64),
        # positions 3..8: all of them on the second rank (chunks 1 and 2 of 4)
        "mask_one_rank": ((torch.arange(seq) >= 3) & (torch.arange(seq) <= 8)).expand(batch, seq).to(torch.float64),
    }


@pytest.mark.parametrize("name", list(CP_SCENARIOS))
def test_context_parallel_zigzag_losses_add_up_to_the_unsplit_loss(rank_results, cp_inputs, name):
    scenario = CP_SCENARIOS[name]
    config = resolve_algo_config(scenario["preset"], scenario["overrides"])
    logits = cp_inputs["logits"].clone().requires_grad_(True)
    logprobs, entropy = vocab_parallel_logprobs_and_entropy(logits, cp_inputs["targets"], config.temperature)
    loss, metrics = policy_loss(logprobs, cp_inputs["old_logprobs"], cp_inputs["advantages"], cp_inputs["mask"],
                                config=config, ref_logprobs=cp_inputs["ref_logprobs"], entropy=entropy)
    loss.backward()
    assert 0 < metrics["clipfrac_low"] + metrics["clipfrac_high"] < 1
    assert config.dual_clip_c is None or metrics["dual_clipfrac"] > 0

    ranks = [torch.load(rank_results / f"{name}_{r}.pt") for r in range(2)]
    torch.testing.assert_close(sum(r["loss"] for r in ranks), loss.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(zigzag_merge([r["grad"] for r in ranks]), logits.grad, rtol=1e-10, atol=1e-12)
    assert logits.grad.abs().sum() > 0
    for rank in ranks:  # reduced over the CP group, each rank's metrics are the unsplit batch's
        assert rank["metrics"] == pytest.approx(metric_values(metrics), rel=1e-9, abs=1e-12)


def test_reduced_extremes_ignore_a_part_without_response_tokens(rank_results, cp_inputs):
    config = resolve_algo_config("microcoder_grpo", {})
    logprobs, _ = vocab_parallel_logprobs_and_entropy(cp_inputs["logits"], cp_inputs["targets"], config.temperature)
    _, metrics = policy_loss(logprobs, cp_inputs["old_logprobs_below"], cp_inputs["advantages"],
                             cp_inputs["mask_one_rank"], config=config)
    assert 1 < metrics["ratio_min"] < metrics["ratio_max"]  # a placeholder 1.0 from the empty part would show
    for rank in range(2):
        reduced = torch.load(rank_results / f"one_rank_{rank}.pt")["metrics"]
        assert reduced == pytest.approx(metric_values(metrics), rel=1e-9, abs=1e-12)
