"""Forward passes over right-padded batches for tools and tests: vocab-parallel logits, and per-token
log-probs computed from them without gathering the vocabulary (the trainer runs its own schedule over
packed or padded micro-batches, trainer/worker.py).

Runs through Megatron-Core's pipeline schedule, so it works for any TP/PP/VPP/CP/EP layout; the logits
exist on the last pipeline stage only (None elsewhere). Padding rows of the vocabulary get -inf, so a
softmax over the shards is a softmax over the real vocabulary.
"""
from __future__ import annotations

from typing import Optional

import torch

from megatron_mc.algo.context_parallel import zigzag_merge, zigzag_split
from megatron_mc.models.adapter import ModelAdapter
from megatron_mc.models.build import unwrap
from megatron_mc.parallel.config import sequence_length_multiple


def _mask_padded_vocab(logits: torch.Tensor, vocab_size: int) -> torch.Tensor:
    from megatron.core import parallel_state as ps

    shard = logits.shape[-1]
    start = ps.get_tensor_model_parallel_rank() * shard
    if start + shard <= vocab_size:
        return logits
    column = torch.arange(start, start + shard, device=logits.device)
    return logits.masked_fill(column >= vocab_size, float("-inf"))


def forward_logits(model_chunks: list[torch.nn.Module], adapter: ModelAdapter, tokens: torch.Tensor,
                   micro_batch_size: int = 1) -> Optional[torch.Tensor]:
    """Logits shard [batch, seq, padded_vocab / tp] (fp32) of right-padded `tokens` [batch, seq].

    Right padding needs no mask under causal attention: real tokens never attend to later positions.
    Under context parallelism each CP rank runs its zig-zag share of the positions and the logits are
    gathered back into sequence order. Runs the schedule forward-only (log-prob recomputation); a
    training step runs its own schedule."""
    from megatron.core import parallel_state as ps
    from megatron.core.pipeline_parallel import get_forward_backward_func

    batch, seq = tokens.shape
    cp = ps.get_context_parallel_world_size()
    # Pad on the right (invisible to causal attention over the real tokens) so that the positions split
    # evenly over the CP ranks and, under sequence parallelism, the TP ranks.
    multiple = sequence_length_multiple(cp, ps.get_tensor_model_parallel_world_size(),
                                        unwrap(model_chunks[0]).config.sequence_parallel)
    padded_seq = -(-seq // multiple) * multiple
    tokens = torch.nn.functional.pad(tokens, (0, padded_seq - seq))
    if batch % micro_batch_size:
        raise ValueError(f"batch size {batch} is not divisible by micro_batch_size {micro_batch_size}")
    device = next(model_chunks[0].parameters()).device
    positions = torch.arange(padded_seq).unsqueeze(0).expand_as(tokens)
    if cp > 1:
        tokens = zigzag_split(tokens, cp, ps.get_context_parallel_rank())
        positions = zigzag_split(positions, cp, ps.get_context_parallel_rank())
    tokens, positions = tokens.to(device), positions.to(device)
    micro = list(zip(tokens.split(micro_batch_size), positions.split(micro_batch_size)))

    def step(data_iterator, model):
        micro_tokens, micro_positions = next(data_iterator)
        output = model(micro_tokens, micro_positions, attention_mask=None)
        return output, lambda out, non_loss_data=True: _mask_padded_vocab(out, adapter.vocab_size)

    iterators = [iter(micro) for _ in model_chunks]
    outputs = get_forward_backward_func()(
        forward_step_func=step,
        data_iterator=iterators if len(model_chunks) > 1 else iterators[0],
        model=model_chunks,
        num_microbatches=len(micro),
        seq_length=padded_seq,
        micro_batch_size=micro_batch_size,
        forward_only=True,
        collect_non_loss_data=True,
    )
    if not ps.is_pipeline_last_stage():
        return None
    logits = torch.cat(outputs)
    if cp > 1:
        logits = gather_context_parallel(logits, ps.get_context_parallel_group())
    return logits[:, :seq]


def gather_context_parallel(part: torch.Tensor, group, dim: int = 1) -> torch.Tensor:
    """Every CP rank's zig-zag part [.., seq / cp, ..] back to the whole sequence, on every rank."""
    import torch.distributed as dist

    parts = [torch.empty_like(part) for _ in range(dist.get_world_size(group))]
    dist.all_gather(parts, part.contiguous(), group=group)
    return zigzag_merge(parts, dim=dim)


def token_log_probs(logits_shard: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(target) from vocab-parallel logits [..., vocab/tp]; reduces across the TP group only."""
    from megatron.core import tensor_parallel

    return -tensor_parallel.vocab_parallel_cross_entropy(logits_shard.clone(), targets.to(logits_shard.device))
