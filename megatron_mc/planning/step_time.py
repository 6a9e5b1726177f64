"""A simple, stated model of one RL step's time: rollout, then training, then the weight sync.

Training (per RL step, on W train GPUs):
  compute     FLOPs / (W x sustained TFLOP/s). FLOPs per token and layer, forward: 2 x the layer's matmul
              parameters (MoE: the top-k experts only) + 2 s q for attention (QK^T and AV under a causal
              mask, s = the mean sequence length, q = heads x head_dim); plus 2 h V for the logits. A
              training pass is 3 forwards (the 6 N tokens rule + attention); the old log-probs (and the
              reference model's when the KL loss is on) are one forward each; recompute adds the forward of
              what it recomputes (full: the whole layer; selective: those modules).
  bubble      compute x (pp-1) / (vpp m), m micro batches per optimizer step on a pipeline.
  tp          sequence parallel: 2 all-gathers + 2 reduce-scatters per layer and pass direction, each
              moving (tp-1)/tp of a micro batch's activations (tokens/cp x h x 2 bytes); full recompute
              repeats the forward ones.
  cp          ring attention: K and V of the local chunk travel cp-1 hops forward, K, V and their
              gradients backward (counted as not hidden behind attention).
  ep          4 all-to-alls per MoE layer (dispatch, combine, both directions) of k copies of the tokens.
  pp          one activation send forward and one gradient back per micro batch and model chunk.
  dp          the distributed optimizer: fp32 gradients reduce-scattered and bf16 parameters all-gathered
              over dp x cp (experts: expert dp) once per optimizer step; with overlap only what outlasts
              the last micro batch's backward (gradients) or the first one's forward (parameters) counts.
  A group stays on NVLink when its ranks fit in a node (Megatron orders ranks tp, cp, ep, dp, pp); else
  it runs at the inter-node bandwidth per GPU.
Rollout: each engine decodes its share of the sequences; a decode step reads the engine's weights (MoE:
  the experts its tokens route to, routing taken as uniform) and the KV cache of the sequences in flight
  from HBM (a roofline at the stated bandwidth; compute-bound
  when the batch is large), plus 10 us per all-reduce (two per layer) when the engine has tp > 1; or,
  when --decode-tokens-per-s is given, the engine runs at that rate. Sequences in flight: what the KV
  cache holds at the mean length, at most the engine's share of the step. The longest response decodes on after
  the others end (max_new_tokens steps at batch 1). Prefill is compute-bound.
Weight sync: all parameters in bf16 once, over NVLink when colocated, inter-node when disaggregated.
Step: rollout + training + sync (the driver's loop is synchronous); with --async-rollout, a disaggregated
  run overlaps generation of the next step with training: max(rollout, training + sync).
Mean sequence length: sequence_fill x (max prompt + max new tokens) (0.5 by default).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from megatron_mc.parallel.config import ParallelConfig
from megatron_mc.planning.activations import Recompute
from megatron_mc.planning.memory import kv_bytes_per_token, total_params
from megatron_mc.planning.model_shape import ModelShape

GB = 1e9
DECODE_ALL_REDUCE_S = 10e-6  # latency of one small NVLink all-reduce of a decode step's activations


@dataclass(frozen=True)
class Assumptions:
    tflops: float = 400.0  # sustained bf16 TFLOP/s per GPU in training (H100: ~40% of the 989 dense peak)
    intra_node_gbs: float = 300.0  # NVLink bus bandwidth per GPU, GB/s (H100 NVLink 4 moves ~360 in NCCL)
    inter_node_gbs: float = 40.0  # per GPU across nodes, GB/s (one 400 Gb/s NIC per GPU)
    hbm_gbs: float = 2000.0  # achieved HBM bandwidth in decode, GB/s (H100 SXM peak 3350)
    decode_tokens_per_s: float | None = None  # per engine; None: the HBM roofline
    sequence_fill: float = 0.5  # mean sequence length / (max prompt + max new tokens)
    async_rollout: bool = False
    reserve_gib: float = 4.0  # per GPU for the CUDA context, NCCL buffers and fragmentation


@dataclass(frozen=True)
class Workload:
    sequences_per_step: int
    optimizer_steps: int  # per RL step
    max_prompt_tokens: int
    max_new_tokens: int
    micro_batch_tokens: int
    forward_only_passes: int  # old log-probs, plus the reference model's
    gpus_per_node: int
    dtype_bytes: int

    def mean_sequence(self, a: Assumptions) -> float:
        return a.sequence_fill * (self.max_prompt_tokens + self.max_new_tokens)

    def tokens_per_step(self, a: Assumptions) -> float:
        return self.sequences_per_step * self.mean_sequence(a)


def layer_forward_flops(shape: ModelShape, seq_len: float) -> dict[str, float]:
    """Forward FLOPs per token of one layer, by module."""
    h, hd = shape.hidden_size, shape.head_dim
    q, kv = shape.num_heads * hd, shape.num_kv_heads * hd
    flops = {"attn_linear": 2 * (h * (q + 2 * kv) + q * h), "core_attn": 2 * seq_len * q}
    if shape.num_experts:
        flops["moe"] = 2 * (shape.experts_per_token * 3 * h * shape.moe_ffn_hidden_size + h * shape.num_experts)
    else:
        flops["mlp"] = 2 * 3 * h * shape.ffn_hidden_size
    return flops


def recompute_fraction(shape: ModelShape, recompute: Recompute, seq_len: float) -> float:
    """The share of a layer's forward FLOPs recompute runs again."""
    flops = layer_forward_flops(shape, seq_len)
    if recompute.kind == "full":
        return 1.0
    if recompute.kind == "selective":
        return sum(flops.get(m, 0.0) for m in recompute.modules) / sum(flops.values())
    return 0.0


def _bandwidth(a: Assumptions, span: int, gpus_per_node: int) -> float:
    return (a.intra_node_gbs if span <= gpus_per_node else a.inter_node_gbs) * GB


def micro_batches(work: Workload, a: Assumptions, dp: int) -> int:
    """Micro batches per optimizer step on one data-parallel rank (packed sequences)."""
    tokens = work.tokens_per_step(a) / work.optimizer_steps / dp
    return max(1, math.ceil(tokens / work.micro_batch_tokens))


def train_time(shape: ModelShape, work: Workload, a: Assumptions, par: ParallelConfig, world: int,
               recompute: Recompute, params_per_gpu: tuple[float, float]) -> dict[str, float]:
    """Seconds per RL step spent by the train ranks, by cause."""
    seq = work.mean_sequence(a)
    tokens = work.tokens_per_step(a)
    dp = par.dp(world)
    m = micro_batches(work, a, dp)
    layer = sum(layer_forward_flops(shape, seq).values())
    forward = shape.num_layers * layer + 2 * shape.hidden_size * shape.vocab_size
    rate = world * a.tflops * 1e12
    train_passes = 3 + work.forward_only_passes
    compute = tokens * forward * train_passes / rate
    recompute_s = tokens * shape.num_layers * layer * recompute_fraction(shape, recompute, seq) / rate
    bubble = (compute + recompute_s) * (par.pp - 1) / (par.virtual_stages * m)

    gpn, b, h = work.gpus_per_node, work.dtype_bytes, shape.hidden_size
    micro_batch_count = m * work.optimizer_steps  # per pipeline, per RL step
    mb_tokens = work.micro_batch_tokens / par.cp  # on one GPU of a context-parallel group
    stage_layers = shape.num_layers / par.pp
    directions = 2 + (1 if recompute.kind == "full" else 0)  # forward, backward, recomputed forward
    train_dirs = directions * micro_batch_count + work.forward_only_passes * micro_batch_count
    times = {"compute": compute, "recompute": recompute_s, "bubble": bubble}
    if par.tp > 1:
        volume = 4 * (par.tp - 1) / par.tp * mb_tokens * h * b
        times["tp comm"] = volume * stage_layers * train_dirs / _bandwidth(a, par.tp, gpn)
    if par.cp > 1:
        kv = mb_tokens * 2 * shape.num_kv_heads * shape.head_dim / par.tp * b
        hops = (par.cp - 1) * kv * stage_layers * ((1 + 2) * micro_batch_count + work.forward_only_passes * micro_batch_count)
        times["cp comm"] = hops / _bandwidth(a, par.tp * par.cp, gpn)
    if par.ep > 1:
        k = shape.experts_per_token
        volume = 2 * (par.ep - 1) / par.ep * mb_tokens / par.tp * k * h * b  # dispatch + combine
        moe_dirs = (2 + (1 if recompute.kind == "full" or "moe" in recompute.modules else 0)) * micro_batch_count \
            + work.forward_only_passes * micro_batch_count
        times["ep comm"] = volume * stage_layers * moe_dirs / _bandwidth(a, par.expert_tp * par.ep, gpn)
    if par.pp > 1:
        send = mb_tokens / (par.tp if par.sequence_parallel else 1) * h * b
        sends = par.virtual_stages * ((2 * micro_batch_count) + work.forward_only_passes * micro_batch_count)
        times["pp comm"] = send * sends / _bandwidth(a, world, gpn)
    dense, expert = params_per_gpu
    groups = ((dense, dp * par.cp), (expert, world // (par.expert_tp * par.ep * par.pp)))
    grads = sum(p * 4 * (g - 1) / g for p, g in groups if g > 1)
    params = sum(p * 2 * (g - 1) / g for p, g in groups if g > 1)
    bw = _bandwidth(a, world // par.pp, gpn)
    per_micro_batch = (compute * 3 / train_passes + recompute_s) / micro_batch_count  # one training fwd+bwd
    backward, forward_s = per_micro_batch * 2 / 3, per_micro_batch / 3
    times["dp comm"] = work.optimizer_steps * (max(0.0, grads / bw - backward) + max(0.0, params / bw - forward_s))
    return times


def engine_decode_step(shape: ModelShape, a: Assumptions, engine_tp: int, batch: int, context: float) -> float:
    """Seconds of one decode step of `batch` sequences at `context` tokens each on one engine: the larger of
    reading weights and KV from HBM and the matmuls, plus two small all-reduces per layer under tp."""
    weights = weights_read(shape, batch) * 2 / engine_tp
    kv = batch * context * kv_bytes_per_token(shape, engine_tp)
    memory = (weights + kv) / (a.hbm_gbs * GB)
    compute = 2 * active_params(shape) * batch / (engine_tp * a.tflops * 1e12)
    all_reduces = 2 * shape.num_layers * DECODE_ALL_REDUCE_S if engine_tp > 1 else 0.0
    return max(memory, compute) + all_reduces


def weights_read(shape: ModelShape, batch: int) -> float:
    """Parameters a decode step of `batch` tokens reads: all of a dense model; of an MoE model the experts
    at least one token routes to (uniform routing: each expert is missed with probability (1 - k/E)^batch)."""
    if not shape.num_experts:
        return total_params(shape)
    experts = shape.num_layers * shape.num_experts * 3 * shape.hidden_size * shape.moe_ffn_hidden_size
    touched = 1 - (1 - shape.experts_per_token / shape.num_experts) ** batch
    return total_params(shape) - experts + experts * touched


def active_params(shape: ModelShape) -> float:
    """Parameters one token passes through (MoE: the top-k experts)."""
    if not shape.num_experts:
        return total_params(shape)
    unused = (shape.num_experts - shape.experts_per_token) * 3 * shape.hidden_size * shape.moe_ffn_hidden_size
    return total_params(shape) - shape.num_layers * unused


def rollout_time(shape: ModelShape, work: Workload, a: Assumptions, engines: int, engine_tp: int,
                 sequences_in_kv: int) -> float:
    """Seconds to generate one RL step's responses on `engines` engines, each holding `sequences_in_kv`
    mean-length sequences in its KV cache at once."""
    per_engine = math.ceil(work.sequences_per_step / engines)
    mean_response = a.sequence_fill * work.max_new_tokens
    prefill = per_engine * a.sequence_fill * work.max_prompt_tokens * 2 * active_params(shape) / (
        engine_tp * a.tflops * 1e12)
    if a.decode_tokens_per_s:
        return prefill + per_engine * mean_response / a.decode_tokens_per_s
    batch = max(1, min(per_engine, sequences_in_kv))
    context = a.sequence_fill * work.max_prompt_tokens + mean_response / 2  # a response's mean context
    bulk = per_engine * mean_response / batch * engine_decode_step(shape, a, engine_tp, batch, context)
    tail = work.max_new_tokens * engine_decode_step(shape, a, engine_tp, 1, context)
    return prefill + max(bulk, tail)


def weight_sync_time(shape: ModelShape, a: Assumptions, mode: str) -> float:
    bandwidth = a.intra_node_gbs if mode == "colocate" else a.inter_node_gbs
    return total_params(shape) * 2 / (bandwidth * GB)
