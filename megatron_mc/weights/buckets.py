"""The policy's weights as HF-named, HF-layout tensors in buckets: the one mapping used by checkpoint
export, the conversion tools and weight sync to the rollout engines."""
from __future__ import annotations

from typing import Iterator

import torch

from megatron_mc.models.adapter import ModelAdapter
from megatron_mc.weights.params import gathered, local_params


def iter_hf_tensors(model_chunks: list[torch.nn.Module], adapter: ModelAdapter) -> Iterator[tuple[str, torch.Tensor]]:
    """Every HF tensor held by this rank's pipeline stage (TP shards gathered, all experts of its layers
    gathered across EP, vocabulary padding removed). Collective over the TP and EP groups: every rank
    of them must iterate to the end; all of them yield the same tensors."""
    for param in local_params(model_chunks, adapter.num_experts):
        for name, shards in gathered(param, adapter.num_experts):
            rule, hf_names = adapter.rule_for(name)
            if not rule.exported:
                continue
            yield from zip(hf_names, rule.layout.to_hf(shards, param.tp_dim))


def iter_hf_buckets(model_chunks: list[torch.nn.Module], adapter: ModelAdapter,
                    bucket_bytes: int) -> Iterator[list[tuple[str, torch.Tensor]]]:
    """`iter_hf_tensors` grouped into lists of about `bucket_bytes` (a tensor larger than that is a bucket
    of its own). Tensors may be views of the parameters: copy before the next optimizer step."""
    bucket, size = [], 0
    for name, tensor in iter_hf_tensors(model_chunks, adapter):
        bucket.append((name, tensor))
        size += tensor.numel() * tensor.element_size()
        if size >= bucket_bytes:
            yield bucket
            bucket, size = [], 0
    if bucket:
        yield bucket
