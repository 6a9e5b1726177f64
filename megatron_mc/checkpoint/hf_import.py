"""Load an HF safetensors checkpoint into this rank's Megatron model chunks (any TP/PP/EP layout)."""
from __future__ import annotations

import torch
import torch.distributed as dist
from tqdm import tqdm

from megatron_mc.checkpoint.safetensors_dir import SafetensorsDir
from megatron_mc.models.adapter import ModelAdapter
from megatron_mc.weights.params import local_params


class CheckpointMismatch(ValueError):
    """The checkpoint's tensors do not match the model: lists missing, unexpected or misshapen tensors."""


def load_hf_weights(model_chunks: list[torch.nn.Module], adapter: ModelAdapter, hf_dir: str,
                    progress: bool = False) -> None:
    """Copy the HF tensors into the parameters. Collective: every rank calls it; all raise together
    (CheckpointMismatch naming every missing, unexpected or misshapen tensor) when the files do not fit."""
    reader = SafetensorsDir(hf_dir)
    consumed, missing, misshapen = set(), [], []
    params = list(local_params(model_chunks, adapter.num_experts))
    show = progress and (not dist.is_initialized() or dist.get_rank() == 0)
    with torch.no_grad():
        for p in tqdm(params, desc=f"load {hf_dir}", disable=not show):
            rule, hf_names = adapter.rule_for(p.name)
            absent = [n for n in hf_names if n not in reader]
            if absent:
                missing += absent
                continue
            group = p.tp_group
            rank = dist.get_rank(group) if group is not None else 0
            size = dist.get_world_size(group) if group is not None else 1
            local = rule.layout.to_local([reader.get(n) for n in hf_names], rank, size, p.tp_dim)
            if local.shape != p.tensor.shape:
                misshapen.append(f"{hf_names} -> {p.name}: {tuple(local.shape)} vs {tuple(p.tensor.shape)}")
                continue
            p.tensor.copy_(local)
            consumed.update(hf_names)
    _agree_or_raise(reader, adapter, hf_dir, consumed, missing, misshapen)


def _agree_or_raise(reader, adapter, hf_dir, consumed, missing, misshapen) -> None:
    views = [(consumed, missing, misshapen)]
    if dist.is_initialized():
        views = [None] * dist.get_world_size()
        dist.all_gather_object(views, (consumed, missing, misshapen))
    consumed = set().union(*(v[0] for v in views))
    missing = sorted(set().union(*(v[1] for v in views)))
    misshapen = sorted(set().union(*(v[2] for v in views)))
    optional = {"lm_head.weight"} if adapter.tied else set()
    unexpected = sorted(reader.names() - consumed - optional)
    if missing or unexpected or misshapen:
        parts = [f"{label} ({len(items)}): {items[:20]}{' ...' if len(items) > 20 else ''}"
                 for label, items in (("missing", missing), ("unexpected", unexpected), ("misshapen", misshapen)) if items]
        raise CheckpointMismatch(
            f"{hf_dir}: checkpoint does not match the {adapter.family} model built from its config.json; "
            + "; ".join(parts)
        )
