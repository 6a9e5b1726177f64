"""The dry-run plan: placement, parallel sizes and per-GPU memory, from a RunConfig, as a printable table."""
from __future__ import annotations

from dataclasses import dataclass

from megatron_mc.config import RunConfig
from megatron_mc.data.sources import model_dir
from megatron_mc.planning.cluster_layout import check_cluster_layout
from megatron_mc.planning.memory import (GIB, EngineLayout, TrainLayout, engine_memory, full_length_sequences_that_fit,
                                         total_params, train_memory)
from megatron_mc.planning.model_shape import ModelShape, load_model_shape
from megatron_mc.planning.placement import Placement, place


@dataclass(frozen=True)
class Plan:
    placement: Placement
    train: TrainLayout
    engine: EngineLayout
    shape: ModelShape
    train_bytes: dict[str, float]
    engine_bytes: dict[str, float]

    @property
    def train_total(self) -> float:
        return sum(self.train_bytes.values())

    @property
    def engine_total(self) -> float:
        return sum(self.engine_bytes.values())

    @property
    def peak(self) -> float:
        """Colocated: the engines run while the train rank's weights, grads and optimizer stay resident
        (activations and logits are freed); disaggregated GPUs only ever hold one of the two."""
        if self.placement.mode == "disaggregate":
            return max(self.train_total, self.engine_total)
        resident = sum(v for k, v in self.train_bytes.items() if k in ("weights", "grads", "optimizer"))
        return max(self.train_total, resident + self.engine_total)


def make_plan(cfg: RunConfig, shape: ModelShape | None = None) -> Plan:
    check_cluster_layout(cfg)
    shape = shape or load_model_shape(model_dir(cfg))
    par, cluster = cfg.parallel, cfg.cluster
    world = cluster.train_gpus
    dp = par.dp(world)
    par.check_model(shape.num_layers, shape.num_heads, shape.num_kv_heads, shape.num_experts)
    placement = place(cluster.mode, cluster.num_nodes, cluster.gpus_per_node, cluster.engine_gpus,
                      cfg.rollout.num_engines, cfg.rollout.tp_size)
    train = TrainLayout(tp=par.tp, pp=par.pp, cp=par.cp, ep=par.ep, etp=par.expert_tp, dp=dp,
                        expert_dp=world // (par.expert_tp * par.ep * par.pp),
                        distributed_optimizer=par.distributed_optimizer, sequence_parallel=par.sequence_parallel,
                        recompute=cfg.model.recompute, micro_batch_tokens=cfg.train.micro_batch_tokens,
                        dtype=cfg.model.dtype)
    engine = EngineLayout(tp=cfg.rollout.tp_size, num_engines=cfg.rollout.num_engines,
                          sequences_per_step=cfg.train.train_batch_size * cfg.train.n_samples_per_prompt,
                          max_sequence_tokens=cfg.data.max_prompt_tokens + cfg.rollout.max_new_tokens,
                          mem_fraction_static=cfg.rollout.mem_fraction_static,
                          gpu_memory_bytes=cluster.gpu_memory_gib * GIB)
    return Plan(placement, train, engine, shape, train_memory(shape, train), engine_memory(shape, engine))


def format_plan(plan: Plan) -> str:
    t, e = plan.train, plan.engine
    lines = [f"model: {total_params(plan.shape) / 1e9:.2f}B parameters, {plan.shape.num_layers} layers, "
             f"hidden {plan.shape.hidden_size}, vocab {plan.shape.vocab_size}"
             + (f", {plan.shape.num_experts} experts" if plan.shape.num_experts else ""),
             f"placement: {plan.placement.mode}, {len(plan.placement.train_gpus)} train GPUs, "
             f"{len(plan.placement.engines)} engines x tp {e.tp}",
             f"train parallel: tp={t.tp} pp={t.pp} cp={t.cp} ep={t.ep} etp={t.etp} -> dp={t.dp} "
             f"(expert dp={t.expert_dp}); distributed optimizer {'on' if t.distributed_optimizer else 'off'}, "
             f"sequence parallel {'on' if t.sequence_parallel else 'off'}, recompute {t.recompute}",
             "", f"{'node':>4}  {'gpu':>3}  role"]
    lines += [f"{node:>4}  {gpu:>3}  {role}" for node, gpu, role in plan.placement.rows()]
    lines += ["", f"per-GPU memory estimate (GiB) on {e.gpu_memory_bytes / GIB:.0f} GiB GPUs, "
                  f"{t.micro_batch_tokens} tokens per micro batch"]
    for title, rows, total in (("train rank", plan.train_bytes, plan.train_total),
                               ("engine", plan.engine_bytes, plan.engine_total)):
        lines += [f"  {title}"] + [f"    {name:<12}{value / GIB:>9.2f}" for name, value in rows.items()]
        lines.append(f"    {'total':<12}{total / GIB:>9.2f}")
    lines.append(f"  peak per GPU ({plan.placement.mode}): {plan.peak / GIB:.2f} GiB")
    fit = full_length_sequences_that_fit(plan.shape, e, plan.engine_bytes["kv_cache"])
    lines.append(f"  each engine holds {fit} sequences of {e.max_sequence_tokens} tokens at once; "
                 f"a step sends it {e.sequences_per_engine}")
    if plan.engine_bytes["kv_cache"] <= 0:
        lines.append("  WARNING: the engine weights do not fit in rollout.mem_fraction_static of the GPU")
    if plan.peak > e.gpu_memory_bytes:
        lines.append(f"  WARNING: the peak exceeds the {e.gpu_memory_bytes / GIB:.0f} GiB of a GPU "
                     f"(cluster.gpu_memory_gib); shard more, recompute, or lower the micro batch tokens")
    return "\n".join(lines)
