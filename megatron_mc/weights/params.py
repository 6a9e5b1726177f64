"""This rank's Megatron parameters under canonical names (global layer and expert indices, local-spec
module names), with the groups that shard them. Shared by HF import, HF export and weight sync."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator, Optional

import torch
import torch.distributed as dist

from megatron_mc.models.build import unwrap
from megatron_mc.weights.gather import all_gather

# Transformer Engine fuses norms into the following linear and groups experts; name them as local-spec.
_TE_ALIASES = (
    (re.compile(r"self_attention\.linear_qkv\.layer_norm_weight$"), "input_layernorm.weight"),
    (re.compile(r"mlp\.linear_fc1\.layer_norm_weight$"), "pre_mlp_layernorm.weight"),
    (re.compile(r"mlp\.experts\.linear_fc(?P<fc>[12])\.weight(?P<expert>\d+)$"),
     r"mlp.experts.local_experts.\g<expert>.linear_fc\g<fc>.weight"),
)
_LAYER = re.compile(r"^decoder\.layers\.(\d+)\.")
_EXPERT = re.compile(r"\.local_experts\.(\d+)\.")


@dataclass
class LocalParam:
    name: str  # canonical, with this rank's global expert index
    tensor: torch.Tensor
    tp_dim: Optional[int]  # dimension sharded over tp_group, None when replicated
    tp_group: Optional[dist.ProcessGroup]
    local_expert: Optional[int]  # index among this rank's experts, None for dense parameters


def _canonical(local_name: str, layer_offset: int, expert_offset: int) -> tuple[str, Optional[int]]:
    name = local_name
    for pattern, replacement in _TE_ALIASES:
        name = pattern.sub(replacement, name)
    name = _LAYER.sub(lambda m: f"decoder.layers.{int(m.group(1)) + layer_offset}.", name)
    match = _EXPERT.search(name)
    if not match:
        return name, None
    local = int(match.group(1))
    return _EXPERT.sub(f".local_experts.{local + expert_offset}.", name), local


def expert_name(name: str, global_expert: int) -> str:
    return _EXPERT.sub(f".local_experts.{global_expert}.", name)


def local_params(chunks: list[torch.nn.Module], num_experts: int) -> Iterator[LocalParam]:
    from megatron.core import parallel_state as ps

    ep_rank, ep = ps.get_expert_model_parallel_rank(), ps.get_expert_model_parallel_world_size()
    expert_offset = ep_rank * (num_experts // ep) if num_experts else 0
    for chunk in chunks:
        model = unwrap(chunk)
        layers = model.decoder.layers if hasattr(model, "decoder") else []
        layer_offset = layers[0].layer_number - 1 if len(layers) else 0
        for local_name, param in model.named_parameters():
            name, local_expert = _canonical(local_name, layer_offset, expert_offset)
            sharded = getattr(param, "tensor_model_parallel", False)
            group = None
            if sharded:
                group = ps.get_expert_tensor_parallel_group() if local_expert is not None else ps.get_tensor_model_parallel_group()
            yield LocalParam(name, param, param.partition_dim if sharded else None, group, local_expert)


def gathered(p: LocalParam, num_experts: int) -> list[tuple[str, list[torch.Tensor]]]:
    """(canonical name, TP shards in rank order) for this parameter, and for the same local expert of every
    expert-parallel rank. Collective: every rank of the TP and EP groups must call it in the same order."""
    from megatron.core import parallel_state as ps

    if p.tp_group is not None and dist.get_world_size(p.tp_group) > 1:
        shards = all_gather(p.tensor, p.tp_group)
    else:
        shards = [p.tensor.detach()]
    ep = ps.get_expert_model_parallel_world_size()
    if p.local_expert is None or ep == 1:
        return [(p.name, shards)]
    group = ps.get_expert_model_parallel_group()
    per_rank = list(zip(*[all_gather(s, group) for s in shards]))
    per_rank_experts = num_experts // ep
    return [
        (expert_name(p.name, rank * per_rank_experts + p.local_expert), list(rank_shards))
        for rank, rank_shards in enumerate(per_rank)
    ]
