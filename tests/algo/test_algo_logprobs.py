"""Chunked log-probs and entropy against the naive full-softmax computation, single rank."""
import pytest
import torch

from megatron_mc.algo import vocab_parallel_logprobs_and_entropy


def naive(logits, targets, temperature):
    log_p = torch.log_softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)) / temperature, dim=-1)
    return log_p.gather(-1, targets.unsqueeze(-1)).squeeze(-1), -(log_p.exp() * log_p).sum(-1)


def values_and_grad(fn, logits, targets, temperature, weights):
    leaf = logits.detach().clone().requires_grad_(True)
    logprobs, entropy = fn(leaf, targets, temperature)
    (logprobs * weights[0] + entropy * weights[1]).sum().backward()
    return logprobs.detach(), entropy.detach(), leaf.grad


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 1000])
def test_values_and_gradients_equal_the_naive_ones_in_fp64(chunk_size):
    torch.manual_seed(0)
    logits = torch.randn(2, 23, 51, dtype=torch.float64) * 3
    targets = torch.randint(0, 51, (2, 23))
    weights = torch.randn(2, 2, 23, dtype=torch.float64)
    chunked = values_and_grad(lambda x, t, temp: vocab_parallel_logprobs_and_entropy(x, t, temp, chunk_size=chunk_size),
                              logits, targets, 0.7, weights)
    reference = values_and_grad(naive, logits, targets, 0.7, weights)
    for got, want in zip(chunked, reference):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_gradcheck_against_finite_differences():
    torch.manual_seed(1)
    logits = torch.randn(9, 13, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(0, 13, (9,))
    assert torch.autograd.gradcheck(lambda x: vocab_parallel_logprobs_and_entropy(x, targets, 1.3, chunk_size=4),
                                    (logits,))


def test_bf16_logits_give_fp32_outputs_and_a_bf16_gradient_close_to_naive():
    torch.manual_seed(2)
    logits = (torch.randn(16, 300) * 2).to(torch.bfloat16)
    targets = torch.randint(0, 300, (16,))
    weights = torch.randn(2, 16)
    lp, h, grad = values_and_grad(lambda x, t, temp: vocab_parallel_logprobs_and_entropy(x, t, temp, chunk_size=5),
                                  logits, targets, 1.0, weights)
    want_lp, want_h, want_grad = values_and_grad(naive, logits, targets, 1.0, weights)
    assert lp.dtype == torch.float32 and grad.dtype == torch.bfloat16
    torch.testing.assert_close(lp, want_lp, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(h, want_h, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad.float(), want_grad.float(), rtol=2e-2, atol=1e-3)


def test_grad_in_logits_writes_the_gradient_into_the_logits_storage():
    torch.manual_seed(3)
    base = torch.randn(10, 17)
    targets = torch.randint(0, 17, (10,))
    weights = torch.randn(2, 10)
    want = values_and_grad(naive, base, targets, 0.9, weights)[2]

    leaf = base.clone().requires_grad_(True)
    logits = leaf * 1.0  # a non-leaf, as the output layer's logits are
    logprobs, entropy = vocab_parallel_logprobs_and_entropy(logits, targets, 0.9, chunk_size=3, grad_in_logits=True)
    (logprobs * weights[0] + entropy * weights[1]).sum().backward()
    torch.testing.assert_close(leaf.grad, want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(logits.detach(), want, rtol=1e-5, atol=1e-6)  # overwritten by design


def test_grad_in_logits_refuses_logits_another_operation_saved():
    logits = torch.randn(4, 6, requires_grad=True) * 1.0
    squared = logits * logits  # saves logits for its own backward
    logprobs, _ = vocab_parallel_logprobs_and_entropy(logits, torch.zeros(4, dtype=torch.long), grad_in_logits=True)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        (logprobs.sum() + squared.sum()).backward()


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="temperature must be > 0"):
        vocab_parallel_logprobs_and_entropy(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), 0.0)
    with pytest.raises(ValueError, match="plus a vocabulary dimension"):
        vocab_parallel_logprobs_and_entropy(torch.zeros(2, 3), torch.zeros(3, dtype=torch.long))


@pytest.mark.gpu
def test_on_cuda_bf16_logits_match_naive_and_allocate_far_less():
    device = torch.device("cuda")
    torch.manual_seed(4)
    logits = (torch.randn(4096, 32000, device=device) * 2).to(torch.bfloat16)
    targets = torch.randint(0, 32000, (4096,), device=device)
    weights = torch.randn(2, 4096, device=device)

    def measured(fn):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        result = values_and_grad(fn, logits, targets, 0.9, weights)
        torch.cuda.synchronize()
        return result, torch.cuda.max_memory_allocated() - before

    (lp, h, grad), chunked_peak = measured(
        lambda x, t, temp: vocab_parallel_logprobs_and_entropy(x, t, temp, chunk_size=256))
    (want_lp, want_h, want_grad), naive_peak = measured(naive)
    torch.testing.assert_close(lp, want_lp, rtol=1e-5, atol=2e-5)
    torch.testing.assert_close(h, want_h, rtol=1e-5, atol=2e-5)
    torch.testing.assert_close(grad.float(), want_grad.float(), rtol=2e-2, atol=1e-3)
    # both hold the leaf copy and its bf16 gradient; naive adds fp32 [tokens x vocab] tensors on top
    assert chunked_peak < naive_peak / 3


def test_vocab_padding_columns_are_left_out_without_a_masked_copy():
    torch.manual_seed(4)
    real = torch.randn(2, 6, 40, dtype=torch.float64)
    padded = torch.cat([real, torch.randn(2, 6, 8, dtype=torch.float64) * 50], dim=-1)  # junk in 8 pad columns
    targets = torch.randint(0, 40, (2, 6))
    weights = torch.randn(2, 2, 6, dtype=torch.float64)
    lp, h, grad = values_and_grad(
        lambda x, t, temp: vocab_parallel_logprobs_and_entropy(x, t, temp, chunk_size=5, vocab_size=40),
        padded, targets, 0.8, weights)
    want_lp, want_h, want_grad = values_and_grad(naive, real, targets, 0.8, weights)
    torch.testing.assert_close(lp, want_lp, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(h, want_h, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(grad[..., :40], want_grad, rtol=1e-10, atol=1e-12)
    assert grad[..., 40:].abs().max() == 0


def test_without_entropy_the_log_probs_and_their_gradient_are_unchanged():
    torch.manual_seed(5)
    logits = torch.randn(12, 30, dtype=torch.float64)
    targets = torch.randint(0, 30, (12,))
    weights = torch.stack([torch.randn(12, dtype=torch.float64), torch.zeros(12, dtype=torch.float64)])
    lp, _, grad = values_and_grad(naive, logits, targets, 1.1, weights)

    leaf = logits.clone().requires_grad_(True)
    logprobs, entropy = vocab_parallel_logprobs_and_entropy(leaf, targets, 1.1, chunk_size=4, with_entropy=False)
    assert entropy is None
    (logprobs * weights[0]).sum().backward()
    torch.testing.assert_close(logprobs.detach(), lp, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(leaf.grad, grad, rtol=1e-10, atol=1e-12)

    # entropy returned as a metric only (not in the loss): backward skips its term, same gradient
    leaf = logits.clone().requires_grad_(True)
    logprobs, entropy = vocab_parallel_logprobs_and_entropy(leaf, targets, 1.1, chunk_size=4)
    (logprobs * weights[0]).sum().backward()
    torch.testing.assert_close(leaf.grad, grad, rtol=1e-10, atol=1e-12)
    assert entropy.requires_grad
