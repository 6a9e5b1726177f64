"""Whether a train layout can split a model at all: Megatron-Core's divisibility rules plus the run's own.

The model-side rules are ParallelConfig's (the ones the trainer applies before building anything: tp
divides heads and query groups, pp x vpp divides layers, ep divides experts, MoE under tp needs sequence
parallel) and its world-size tiling (tp x pp x cp and etp x ep x pp divide the train GPUs). Added here:
the padded vocabulary splits over tp; a full-length sequence, padded to what cp and sequence parallel
need, fits a micro batch; the samples of an optimizer step split over dp; full recompute's num_layers
fits each model chunk (uniform: divides it); and CUDA IPC weight sync (rollout.weight_sync: tensor) has
no pipeline stages (cluster_layout.py; it also keeps the run colocated on one node).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from megatron_mc.parallel.config import ParallelConfig, sequence_length_multiple
from megatron_mc.planning.activations import Recompute
from megatron_mc.planning.model_shape import ModelShape


@dataclass(frozen=True)
class RunNeeds:
    """What the run fixes, whatever the layout."""

    max_sequence_tokens: int  # max prompt tokens + max new tokens
    micro_batch_tokens: int
    samples_per_optimizer_step: int  # mini_batch_size x n_samples_per_prompt
    padded_vocab: int
    ipc_weight_sync: bool = False  # rollout.weight_sync: tensor (CUDA IPC): every layer on each engine's GPUs


def padded_vocab(vocab_size: int, multiple: int) -> int:
    return math.ceil(vocab_size / multiple) * multiple


def layout_problem(shape: ModelShape, needs: RunNeeds, par: ParallelConfig, world: int,
                   recompute: Recompute) -> str | None:
    """None when the layout is valid, else the first rule it breaks, in words."""
    try:
        dp = par.dp(world)
        par.check_model(shape.num_layers, shape.num_heads, shape.num_kv_heads, shape.num_experts)
    except ValueError as e:
        return str(e)
    if needs.ipc_weight_sync and par.pp > 1:
        return (f"pp={par.pp}: rollout.weight_sync: tensor (CUDA IPC) needs every layer on each engine's GPUs "
                "(no pipeline stages)")
    if needs.padded_vocab % par.tp:
        return f"tp={par.tp} must divide the padded vocabulary {needs.padded_vocab}"
    multiple = sequence_length_multiple(par.cp, par.tp, par.sequence_parallel)
    padded = math.ceil(needs.max_sequence_tokens / multiple) * multiple
    if padded > needs.micro_batch_tokens:
        return (f"a full-length sequence ({needs.max_sequence_tokens} tokens, padded to {padded} for cp={par.cp}) "
                f"does not fit train.micro_batch_tokens={needs.micro_batch_tokens}")
    if needs.samples_per_optimizer_step % dp:
        return f"dp={dp} must divide the {needs.samples_per_optimizer_step} samples of an optimizer step"
    if recompute.kind == "full":
        chunk_layers = shape.num_layers // (par.pp * par.virtual_stages)
        if recompute.num_layers > chunk_layers or (recompute.method == "uniform" and chunk_layers % recompute.num_layers):
            return (f"recompute_num_layers={recompute.num_layers} does not fit the {chunk_layers} layers of a model "
                    f"chunk ({recompute.method})")
    return None
