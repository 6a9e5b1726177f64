"""A per-GPU memory estimate for the train ranks and the engines, good to a few tens of percent.

Train rank (the most loaded pipeline stage):
  weights     params on the GPU x bytes of model.dtype
  grads       params x 4 (fp32 main-grad buffers)
  optimizer   Adam: fp32 master copy (only when the model is not fp32) + two fp32 moments;
              with the distributed optimizer divided over data x context parallel (Megatron shards it over
              the data-parallel group with context parallel; experts: over expert data parallel)
  activations per layer and token (Korthikanti et al. 2022, with flash attention, so no s^2 term):
              h x (10 + 24/tp) bytes, or 34 h / tp with sequence parallel; full recompute keeps only each
              layer's input (2 h bytes, / tp with sequence parallel) plus one layer's working set.
              1F1B keeps pp micro batches in flight on the first stage, which holds L/pp layers: L layers'
              worth in all. Tokens per micro batch: train.micro_batch_tokens / cp. Selective recompute
              recomputes the attention core, whose s^2 term flash attention already avoids: same as none.
              (The layout search counts activations module by module instead: activations.py.)
  logits      one micro batch's logits in model.dtype, vocab split over tp; the log-prob path takes them
              chunk by chunk in fp32 and writes their gradient in place (algo/logprobs.py)
Engine GPU:
  weights     all params in bf16 / engine tp
  kv_cache    SGLang reserves rollout.mem_fraction_static of the GPU for weights and KV cache; the KV pool
              is what remains after the weights. A token costs 2 (K, V) x layers x kv heads on the GPU x
              head_dim x 2 bytes; the plan also says how many full-length sequences (prompt +
              max_new_tokens) fit at once, against how many one RL step sends to each engine.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from megatron_mc.planning.activations import Recompute, activation_bytes
from megatron_mc.planning.model_shape import ModelShape

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
GIB = 1024 ** 3


@dataclass(frozen=True)
class TrainLayout:
    tp: int
    pp: int
    cp: int
    ep: int
    etp: int
    dp: int
    expert_dp: int
    distributed_optimizer: bool
    sequence_parallel: bool
    recompute: str  # none | selective | full
    micro_batch_tokens: int
    dtype: str


@dataclass(frozen=True)
class EngineLayout:
    tp: int
    num_engines: int
    sequences_per_step: int  # train_batch_size x samples per prompt
    max_sequence_tokens: int  # max prompt tokens + max_new_tokens
    mem_fraction_static: float
    gpu_memory_bytes: float

    @property
    def sequences_per_engine(self) -> int:
        return math.ceil(self.sequences_per_step / self.num_engines)


def layer_params(shape: ModelShape) -> tuple[int, int]:
    """(dense, expert) parameters of one transformer layer."""
    h, hd = shape.hidden_size, shape.head_dim
    attention = h * shape.num_heads * hd + 2 * h * shape.num_kv_heads * hd + shape.num_heads * hd * h
    norms = 2 * h + (2 * hd if shape.qk_norm else 0)
    if shape.num_experts:
        router = h * shape.num_experts
        return attention + norms + router, shape.num_experts * 3 * h * shape.moe_ffn_hidden_size
    return attention + norms + 3 * h * shape.ffn_hidden_size, 0


def total_params(shape: ModelShape) -> int:
    dense, expert = layer_params(shape)
    vocab = shape.vocab_size * shape.hidden_size * (1 if shape.tie_word_embeddings else 2)
    return shape.num_layers * (dense + expert) + vocab + shape.hidden_size


def train_params_per_gpu(shape: ModelShape, layout: TrainLayout) -> tuple[float, float]:
    """(dense, expert) parameters held by one GPU of the most loaded stage."""
    dense, expert = layer_params(shape)
    layers = shape.num_layers / layout.pp
    # pp=1 holds both input embedding and output layer (one matrix when tied); with pp>1 the first and
    # last stages hold one vocab matrix each (Megatron keeps a copy of a tied embedding on the last stage)
    vocab_matrices = 2 if layout.pp == 1 and not shape.tie_word_embeddings else 1
    vocab = vocab_matrices * shape.vocab_size * shape.hidden_size / layout.tp
    return layers * dense / layout.tp + vocab + shape.hidden_size, layers * expert / (layout.ep * layout.etp)


def train_memory(shape: ModelShape, layout: TrainLayout) -> dict[str, float]:
    dense, expert = train_params_per_gpu(shape, layout)
    param_bytes = DTYPE_BYTES[layout.dtype]
    optimizer_bytes = 8 + (4 if param_bytes < 4 else 0)
    dense_shards = layout.dp * layout.cp if layout.distributed_optimizer else 1
    expert_shards = layout.expert_dp if layout.distributed_optimizer else 1
    tokens = layout.micro_batch_tokens / layout.cp
    h, tp = shape.hidden_size, layout.tp
    full_layer = tokens * h * (34 / tp if layout.sequence_parallel else 10 + 24 / tp)
    if layout.recompute == "full":
        layer_input = tokens * h * 2 / (tp if layout.sequence_parallel else 1)
        activations = layer_input * shape.num_layers + full_layer
    else:
        activations = full_layer * shape.num_layers
    return {
        "weights": (dense + expert) * param_bytes,
        "grads": (dense + expert) * 4,
        "optimizer": dense * optimizer_bytes / dense_shards + expert * optimizer_bytes / expert_shards,
        "activations": activations,
        "logits": tokens * shape.vocab_size / tp * param_bytes,
    }


def kv_bytes_per_token(shape: ModelShape, engine_tp: int) -> int:
    kv_heads_per_gpu = math.ceil(shape.num_kv_heads / engine_tp)  # replicated when fewer heads than GPUs
    return 2 * shape.num_layers * kv_heads_per_gpu * shape.head_dim * 2


def engine_memory(shape: ModelShape, layout: EngineLayout) -> dict[str, float]:
    weights = total_params(shape) * 2 / layout.tp
    return {"weights": weights, "kv_cache": layout.mem_fraction_static * layout.gpu_memory_bytes - weights}


def full_length_sequences_that_fit(shape: ModelShape, layout: EngineLayout, kv_pool: float) -> int:
    """Sequences of maximum length one engine holds at once (the rest queue)."""
    per_sequence = layout.max_sequence_tokens * kv_bytes_per_token(shape, layout.tp) * layout.tp
    return max(0, int(kv_pool * layout.tp // per_sequence))


def train_memory_with(shape: ModelShape, layout: TrainLayout, recompute: Recompute, vpp: int,
                      micro_batches: int, fused: bool = True) -> dict[str, float]:
    """train_memory with activations module by module for one recompute choice, vpp, the micro batches a
    pipeline runs per optimizer step and the layers' implementation (activations.py; what the layout
    search uses)."""
    memory = train_memory(shape, layout)
    memory["activations"] = activation_bytes(
        shape, recompute, tp=layout.tp, etp=layout.etp, pp=layout.pp, vpp=vpp,
        sequence_parallel=layout.sequence_parallel, dtype_bytes=DTYPE_BYTES[layout.dtype],
        tokens=layout.micro_batch_tokens / layout.cp, micro_batches=micro_batches, fused=fused)
    return memory
