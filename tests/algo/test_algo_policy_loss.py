"""The policy loss, each mode against values computed by hand on a [2 x 3] batch.

Row 0 has advantage +1 and log-ratios [.3, -.5, 0]; row 1 has advantage -2 and log-ratios [0, -.5, -1]
with its last token padding. With eps_low .2, eps_high .28 the per-token losses are
  row 0: -min(r, clip r) * 1 = [-1.28 (clipped high), -e^-.5, -1]
  row 1: max(2 r, 2 clip r)  = [2, 1.6 (clipped low), (padding)]
"""
import math

import pytest
import torch

from megatron_mc.algo import AlgoConfig, policy_loss

E_MINUS_HALF = math.exp(-0.5)
ROW0 = [-1.28, -E_MINUS_HALF, -1.0]
ROW1 = [2.0, 1.6]
TOTAL = sum(ROW0) + sum(ROW1)


def batch():
    logprobs = torch.tensor([[-1.0, -2.0, -0.5], [-1.5, -0.7, -3.0]], requires_grad=True)
    old = torch.tensor([[-1.3, -1.5, -0.5], [-1.5, -0.2, -2.0]])
    advantages = torch.tensor([1.0, -2.0])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    return logprobs, old, advantages, mask


def config(**overrides):
    settings = dict(eps_clip_low=0.2, eps_clip_high=0.28, kl_coef=0.0, loss_agg_mode="token-mean")
    settings.update(overrides)
    return AlgoConfig(**settings)


@pytest.mark.parametrize("mode, norm_length, expected", [
    ("token-mean", None, TOTAL / 5),
    ("seq-mean-token-sum", None, TOTAL / 2),
    ("seq-mean-token-mean", None, (sum(ROW0) / 3 + sum(ROW1) / 2) / 2),
    ("seq-mean-token-sum-norm", None, TOTAL / (2 * 3)),
    ("seq-mean-token-sum-norm", 10, TOTAL / (2 * 10)),
])
def test_aggregation_modes(mode, norm_length, expected):
    logprobs, old, advantages, mask = batch()
    loss, metrics = policy_loss(logprobs, old, advantages, mask,
                                config=config(loss_agg_mode=mode, loss_norm_length=norm_length))
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert metrics["pg_loss"] == pytest.approx(expected, rel=1e-6)


def test_clipped_tokens_and_padding_get_no_gradient_and_the_others_get_minus_a_r():
    logprobs, old, advantages, mask = batch()
    loss, metrics = policy_loss(logprobs, old, advantages, mask, config=config())
    loss.backward()
    expected = torch.tensor([[0.0, -E_MINUS_HALF, -1.0], [2.0, 0.0, 0.0]]) / 5
    torch.testing.assert_close(logprobs.grad, expected)
    assert metrics["clipfrac_high"] == pytest.approx(0.2) and metrics["clipfrac_low"] == pytest.approx(0.2)
    assert metrics["dual_clipfrac"] == 0.0 and metrics["masked_fraction"] == 0.0


def test_ratio_and_kl_metrics():
    logprobs, old, advantages, mask = batch()
    _, metrics = policy_loss(logprobs, old, advantages, mask, config=config())
    ratios = [math.exp(0.3), E_MINUS_HALF, 1.0, 1.0, E_MINUS_HALF]
    assert metrics["ratio_mean"] == pytest.approx(sum(ratios) / 5, rel=1e-6)
    assert metrics["ratio_min"] == pytest.approx(E_MINUS_HALF, rel=1e-6)
    assert metrics["ratio_max"] == pytest.approx(math.exp(0.3), rel=1e-6)
    # k3 of the new policy against the old: e^-x + x - 1 per token
    k3 = [math.exp(-x) + x - 1 for x in (0.3, -0.5, 0.0, 0.0, -0.5)]
    assert metrics["approx_kl"] == pytest.approx(sum(k3) / 5, rel=1e-5)


def test_dual_clip_caps_the_loss_of_negative_advantages_at_c_times_minus_a():
    logprobs = torch.tensor([[0.0, -1.0]], requires_grad=True)
    old = torch.tensor([[-1.5, -1.0]])  # ratios e^1.5 = 4.48 and 1
    mask = torch.ones(1, 2)
    plain, _ = policy_loss(logprobs, old, torch.tensor([-2.0]), mask, config=config())
    assert plain.item() == pytest.approx((2 * math.exp(1.5) + 2.0) / 2, rel=1e-6)
    capped, metrics = policy_loss(logprobs, old, torch.tensor([-2.0]), mask, config=config(dual_clip_c=3.0))
    assert capped.item() == pytest.approx((6.0 + 2.0) / 2, rel=1e-6)
    assert metrics["dual_clipfrac"] == 0.5
    capped.backward()
    torch.testing.assert_close(logprobs.grad, torch.tensor([[0.0, 1.0]]))


def test_gspo_uses_one_length_normalized_ratio_per_sequence():
    logprobs, old, advantages, mask = batch()
    loss, _ = policy_loss(logprobs, old, advantages, mask,
                          config=config(ratio_level="sequence", loss_agg_mode="seq-mean-token-mean"))
    s0 = math.exp((0.3 - 0.5 + 0.0) / 3)  # 0.9355, inside the clip range
    s1 = math.exp((0.0 - 0.5) / 2)  # 0.7788 < 0.8 with A < 0: clipped, loss 2 * 0.8
    assert loss.item() == pytest.approx((-s0 + 1.6) / 2, rel=1e-6)
    loss.backward()
    # d/dlogp_t of -(1/2) exp(mean_t log-ratio) = -(1/2) s0 / 3 for each of row 0's tokens; row 1 is clipped
    expected = torch.tensor([[-s0 / 6] * 3, [0.0, 0.0, 0.0]])
    torch.testing.assert_close(logprobs.grad, expected)


def rollout_for(log_k):
    _, old, _, _ = batch()
    return old - torch.tensor(log_k)


LOG_K = [[0.0, 1.0, -0.5], [2.0, 0.0, 0.0]]  # k = pi_old / pi_rollout = e^log_k


def test_truncated_importance_sampling_weights_tokens_by_min_k_cap():
    logprobs, old, advantages, mask = batch()
    loss, metrics = policy_loss(logprobs, old, advantages, mask, config=config(rollout_correction="tis", tis_cap=2.0),
                                rollout_logprobs=rollout_for(LOG_K))
    weighted = (-1.28 * 1 - E_MINUS_HALF * 2.0 - 1.0 * E_MINUS_HALF) + (2.0 * 2.0 + 1.6 * 1)
    assert loss.item() == pytest.approx(weighted / 5, rel=1e-6)
    assert metrics["train_rollout_logprob_diff"] == pytest.approx((0 + 1 + 0.5 + 2 + 0) / 5, rel=1e-6)
    assert metrics["rollout_weight_mean"] == pytest.approx((1 + 2 + E_MINUS_HALF + 2 + 1) / 5, rel=1e-6)


def test_icepop_drops_tokens_whose_k_is_outside_its_band_and_weights_the_rest_by_k():
    logprobs, old, advantages, mask = batch()
    loss, metrics = policy_loss(logprobs, old, advantages, mask,
                                config=config(rollout_correction="icepop", icepop_low=0.5, icepop_high=5.0),
                                rollout_logprobs=rollout_for(LOG_K))
    weighted = (-1.28 * 1 - E_MINUS_HALF * math.e - 1.0 * E_MINUS_HALF) + (2.0 * 0.0 + 1.6 * 1)
    assert loss.item() == pytest.approx(weighted / 5, rel=1e-6)
    assert metrics["masked_fraction"] == pytest.approx(0.2)  # row 1 token 0: k = e^2 > 5
    loss.backward()
    assert logprobs.grad[1, 0] == 0


def test_rollout_correction_without_rollout_logprobs_says_what_to_pass():
    logprobs, old, advantages, mask = batch()
    with pytest.raises(ValueError, match="needs the rollout log-probs"):
        policy_loss(logprobs, old, advantages, mask, config=config(rollout_correction="tis"))


D = [[0.1, -0.2, 0.0], [0.3, 0.0, 0.5]]  # log pi - log pi_ref; the 0.5 is padding


@pytest.mark.parametrize("estimator, per_token", [
    ("k1", lambda d: d),
    ("k2", lambda d: 0.5 * d * d),
    ("k3", lambda d: math.exp(-d) + d - 1),
])
def test_kl_loss_adds_coef_times_the_aggregated_estimate(estimator, per_token):
    logprobs, old, advantages, mask = batch()
    ref = logprobs.detach() - torch.tensor(D)
    base, _ = policy_loss(logprobs, old, advantages, mask, config=config())
    loss, metrics = policy_loss(logprobs, old, advantages, mask, ref_logprobs=ref,
                                config=config(kl_coef=0.5, kl_estimator=estimator))
    expected_kl = sum(per_token(d) for d in (0.1, -0.2, 0.0, 0.3, 0.0)) / 5
    assert metrics["kl_loss"] == pytest.approx(expected_kl, rel=1e-5, abs=1e-7)
    assert loss.item() == pytest.approx(base.item() + 0.5 * expected_kl, rel=1e-5)


def test_kl_on_without_reference_logprobs_says_what_to_do():
    logprobs, old, advantages, mask = batch()
    with pytest.raises(ValueError, match="needs ref_logprobs"):
        policy_loss(logprobs, old, advantages, mask, config=config(kl_coef=0.1))


def test_entropy_bonus_subtracts_coef_times_the_aggregated_entropy():
    logprobs, old, advantages, mask = batch()
    entropy = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    base, _ = policy_loss(logprobs, old, advantages, mask, config=config())
    loss, metrics = policy_loss(logprobs, old, advantages, mask, entropy=entropy, config=config(entropy_coef=0.01))
    assert metrics["entropy"] == pytest.approx(3.0) and metrics["entropy_loss"] == pytest.approx(3.0)
    assert loss.item() == pytest.approx(base.item() - 0.03, rel=1e-6)
    loss.backward()
    torch.testing.assert_close(entropy.grad, -0.01 / 5 * mask.float())


def test_per_token_advantages_are_accepted():
    logprobs, old, advantages, mask = batch()
    per_sequence, _ = policy_loss(logprobs, old, advantages, mask, config=config())
    per_token, _ = policy_loss(logprobs, old, advantages[:, None].expand(2, 3), mask, config=config())
    assert per_token.item() == pytest.approx(per_sequence.item())


def test_mismatched_shapes_are_named():
    logprobs, old, advantages, mask = batch()
    with pytest.raises(ValueError, match=r"must have the same \[B, T\] shape"):
        policy_loss(logprobs, old[:, :2], advantages, mask, config=config())
