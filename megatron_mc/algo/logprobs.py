"""Log-probs of the sampled tokens and the policy's entropy, from vocab-parallel logits at temperature T.

Megatron's output layer leaves each tensor-parallel rank r with logits for vocab rows
[r * V / tp, (r + 1) * V / tp). Softmax statistics (max, normalizer, expected logit, the target's logit)
are reduced across the TP group, chunk by chunk along the tokens, so no fp32 [tokens x vocab] tensor is
ever held whole: forward keeps only per-token statistics, backward recomputes each chunk's softmax and
needs no communication. Gradients are exact, with respect to the logits (the logits divided by T inside):

  d log p_t / d z_j = 1[j = t] - p_j,          d H / d z_j = -p_j (log p_j + H),   z = logits / T.
"""
from __future__ import annotations

import torch
import torch.distributed as dist

_PADDED_VOCAB_LOGIT = -1e30


def vocab_parallel_logprobs_and_entropy(logits_shard: torch.Tensor, target_ids: torch.Tensor,
                                        temperature: float = 1.0, tp_group: dist.ProcessGroup | None = None,
                                        chunk_size: int = 512, grad_in_logits: bool = False,
                                        vocab_size: int | None = None, with_entropy: bool = True
                                        ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(log p(target), entropy), fp32 (fp64 for fp64 logits), shaped like target_ids, for logits_shard [..., vocab / tp].

    tp_group None is the single-rank case (the shard is the whole vocabulary). The logits may be bf16:
    each chunk is converted to fp32 on its own, so no fp32 copy of the whole logits is made.
    grad_in_logits: backward writes the gradient into logits_shard's own storage, as Megatron's fused
    vocab-parallel cross entropy does, so no second [tokens x vocab] tensor is allocated; only for logits
    used by nothing else, since they are overwritten (autograd raises if another operation saved them).
    vocab_size: the real vocabulary when the shards carry padding columns after it; those columns are
    left out chunk by chunk (no masked copy of the logits). with_entropy False: the entropy is neither
    computed nor returned (None); when it is returned but no loss uses it, backward skips its term.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if logits_shard.shape[:-1] != target_ids.shape:
        raise ValueError(f"logits_shard {tuple(logits_shard.shape)} must be target_ids {tuple(target_ids.shape)} "
                         "plus a vocabulary dimension")
    flat_logits = logits_shard.reshape(-1, logits_shard.shape[-1])
    logprobs, entropy = _VocabParallelLogprobEntropy.apply(flat_logits, target_ids.reshape(-1), float(temperature),
                                                           tp_group, int(chunk_size), bool(grad_in_logits),
                                                           vocab_size, bool(with_entropy))
    return logprobs.view(target_ids.shape), entropy.view(target_ids.shape) if with_entropy else None


class _VocabParallelLogprobEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, targets, temperature, tp_group, chunk_size, grad_in_logits, vocab_size, with_entropy):
        ctx.set_materialize_grads(False)
        n_tokens, shard_vocab = logits.shape
        vocab_start = _rank(tp_group) * shard_vocab
        # columns of this shard past the real vocabulary (vocab padding): none when it ends before it
        real_columns = shard_vocab if vocab_size is None else min(max(vocab_size - vocab_start, 0), shard_vocab)
        local_targets = targets - vocab_start
        on_this_rank = (local_targets >= 0) & (local_targets < shard_vocab)
        local_targets = torch.where(on_this_rank, local_targets, torch.zeros_like(local_targets))

        logprobs = torch.empty(n_tokens, dtype=_compute_dtype(logits), device=logits.device)
        entropy = torch.empty_like(logprobs)
        log_normalizer = torch.empty_like(logprobs)  # max + log sum exp(z - max), over the whole vocabulary
        for rows in _chunks(n_tokens, chunk_size):
            shifted = _scaled(logits[rows], temperature, real_columns)
            row_max = shifted.max(dim=-1).values
            _all_reduce(row_max, dist.ReduceOp.MAX, tp_group)
            shifted -= row_max[:, None]
            exp = torch.exp(shifted)
            normalizer = exp.sum(dim=-1)
            # sum_j e_j z_j with torch's cascaded sum in exp's own buffer (a BLAS dot product loses
            # ~1e-4 over 150k fp32 terms)
            exp_dot_shifted = exp.mul_(shifted).sum(dim=-1) if with_entropy else torch.zeros_like(normalizer)
            target_shifted = shifted.gather(1, local_targets[rows, None]).view(-1) * on_this_rank[rows]
            del exp, shifted
            sums = torch.stack([normalizer, exp_dot_shifted, target_shifted])
            _all_reduce(sums, dist.ReduceOp.SUM, tp_group)
            normalizer, exp_dot_shifted, target_shifted = sums
            log_sum = normalizer.log()
            logprobs[rows] = target_shifted - log_sum
            entropy[rows] = log_sum - exp_dot_shifted / normalizer
            log_normalizer[rows] = row_max + log_sum

        ctx.save_for_backward(logits, local_targets, on_this_rank, log_normalizer, entropy)
        ctx.temperature, ctx.chunk_size, ctx.grad_in_logits = temperature, chunk_size, grad_in_logits
        ctx.real_columns = real_columns
        return logprobs, entropy

    @staticmethod
    def backward(ctx, grad_logprobs, grad_entropy):
        logits, local_targets, on_this_rank, log_normalizer, entropy = ctx.saved_tensors
        grad_logits = logits if ctx.grad_in_logits else torch.empty_like(logits)
        if grad_logprobs is None:
            grad_logprobs = torch.zeros_like(log_normalizer)
        target_grad = (grad_logprobs * on_this_rank).unsqueeze(1)
        for rows in _chunks(logits.shape[0], ctx.chunk_size):
            log_p = _scaled(logits[rows], ctx.temperature, ctx.real_columns)
            log_p -= log_normalizer[rows, None]
            p = torch.exp(log_p)
            # grad_z = g_lp * (onehot - p) - g_H * p * (log p + H), built in log_p's buffer
            if grad_entropy is None:  # the entropy was a metric only
                grad = p.mul_(grad_logprobs[rows, None])
            else:
                grad = log_p.add_(entropy[rows, None]).mul_(grad_entropy[rows, None]).add_(grad_logprobs[rows, None])
                grad.mul_(p)
            grad.neg_()
            del p, log_p
            grad.scatter_add_(1, local_targets[rows, None], target_grad[rows])
            grad_logits[rows] = grad.div_(ctx.temperature)
        return grad_logits, None, None, None, None, None, None, None


def _scaled(chunk: torch.Tensor, temperature: float, real_columns: int) -> torch.Tensor:
    """A new buffer holding chunk / temperature in fp32 (fp64 for fp64 input): one buffer, whatever the
    dtype. Vocab padding columns get a finite -1e30, so that p * log p there is 0 * (-1e30) = 0, not nan."""
    dtype = _compute_dtype(chunk)
    scaled = chunk / temperature if chunk.dtype == dtype else chunk.to(dtype).div_(temperature)
    if real_columns < scaled.shape[-1]:
        scaled[:, real_columns:] = _PADDED_VOCAB_LOGIT
    return scaled


def _compute_dtype(logits: torch.Tensor) -> torch.dtype:
    return torch.promote_types(logits.dtype, torch.float32)


def _chunks(n: int, size: int):
    return (slice(start, min(start + size, n)) for start in range(0, n, size))


def _rank(group: dist.ProcessGroup | None) -> int:
    return 0 if group is None else dist.get_rank(group)


def _all_reduce(x: torch.Tensor, op: dist.ReduceOp, group: dist.ProcessGroup | None) -> None:
    if group is not None:
        dist.all_reduce(x, op=op, group=group)
