"""Property: a sample the truncation mask zeroes contributes no gradient to the policy loss, whatever the
batch, the mask draw, the aggregation mode or the ratio level (KL and entropy bonus off, as in
MicroCoder-GRPO: with them on, a masked sample still feels the KL and entropy terms)."""
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from megatron_mc.algo import JudgedBatch, compute_sample_advantages, policy_loss, resolve_algo_config

L_MAX = 12
M = 3


@st.composite
def judged_batches(draw):
    n_groups = draw(st.integers(1, 3))
    group_size = draw(st.integers(2, 5))
    n = n_groups * group_size
    lengths = draw(st.lists(st.sampled_from([L_MAX, L_MAX, 1, 5, 11]), min_size=n, max_size=n))
    tokens = [draw(st.lists(st.integers(0, 3), min_size=length, max_size=length)) for length in lengths]
    return JudgedBatch(
        rewards=draw(st.lists(st.sampled_from([0.0, 1.0, 0.5]), min_size=n, max_size=n)),
        group_ids=[i // group_size for i in range(n)],
        response_lengths=lengths,
        max_length=L_MAX,
        non_incorrect=draw(st.lists(st.booleans(), min_size=n, max_size=n)),
        response_token_ids=tokens,
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=judged_batches(), rho=st.floats(0.3, 1.0), seed=st.integers(0, 2**31 - 1),
       mode=st.sampled_from(["token-mean", "seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm"]),
       ratio_level=st.sampled_from(["token", "sequence"]), dual_clip=st.sampled_from([None, 3.0]),
       policy_drift=st.sampled_from([0.0, 0.2]))
def test_masked_samples_contribute_no_gradient(batch, rho, seed, mode, ratio_level, dual_clip, policy_drift):
    config = resolve_algo_config("microcoder_grpo", {"truncation_mask_rho": rho, "truncation_mask_repeat_window": M,
                                                     "loss_agg_mode": mode, "ratio_level": ratio_level,
                                                     "dual_clip_c": dual_clip})
    result = compute_sample_advantages(batch, config, generator=torch.Generator().manual_seed(seed))
    n = len(batch.response_lengths)
    generator = torch.Generator().manual_seed(seed)
    logprobs = (-torch.rand(n, L_MAX, generator=generator, dtype=torch.float64) * 3).requires_grad_(True)
    old = logprobs.detach() + policy_drift * torch.randn(n, L_MAX, generator=generator, dtype=torch.float64)
    lengths = torch.tensor(batch.response_lengths)
    mask = torch.arange(L_MAX)[None, :] < lengths[:, None]

    loss, _ = policy_loss(logprobs, old, result.advantages, mask, config=config)
    loss.backward()

    masked = result.truncation.masked
    assert torch.all(logprobs.grad[masked] == 0)
    assert torch.all(result.advantages[masked] == 0)
    # the property is not vacuous: without drift nothing is clipped, and samples with an advantage move
    moving = result.advantages != 0
    if policy_drift == 0.0 and moving.any():
        assert torch.all(logprobs.grad[moving].abs().sum(-1) > 0)
