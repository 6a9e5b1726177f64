"""`mc-plan --search`: every train layout and placement of a run on N GPUs that Megatron-Core can build
and that fits per-GPU memory, ranked by the estimated RL step time (step_time.py).

Enumerated: tp (powers of two within a node), pp (divides the layers), vpp, cp, ep (MoE: powers of two
dividing the experts), etp (1 or tp), the recompute choices below, and the placement: colocated (engines
of tp 1..node on every GPU, their KV cache taking what the trainer's resident state leaves) or
disaggregated (whole nodes of engines, the rest training; a single node splits in halves; not with
CUDA IPC weight sync, which also rules out pipeline stages). Sequence
parallel is on whenever tp > 1, the distributed optimizer always, micro batches keep
train.micro_batch_tokens. A layout fits when the train rank's peak (and, colocated, its resident
weights, grads and optimizer plus the engine) stays within the GPU less a reserve, and each engine's KV
cache holds at least one full-length sequence.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

from megatron_mc.config import RunConfig
from megatron_mc.parallel.config import ParallelConfig
from megatron_mc.planning.activations import Recompute
from megatron_mc.planning.memory import (DTYPE_BYTES, GIB, TrainLayout, kv_bytes_per_token, total_params,
                                         train_memory_with, train_params_per_gpu)
from megatron_mc.planning.model_shape import ModelShape
from megatron_mc.planning.rules import RunNeeds, layout_problem, padded_vocab
from megatron_mc.planning.step_time import (Assumptions, Workload, micro_batches, rollout_time, train_time,
                                            weight_sync_time)

RESIDENT = ("weights", "grads", "optimizer")


@dataclass
class Candidate:
    par: ParallelConfig
    recompute: Recompute
    mode: str  # colocate | disaggregate
    train_gpus: int
    engine_gpus: int
    engine_tp: int
    train_bytes: dict[str, float]
    peak: float
    budget: float
    times: dict[str, float] = field(default_factory=dict)
    sequences_in_kv: int = 0
    engine_fraction: float = 0.0  # rollout.mem_fraction_static that gives the engines what is free
    rank: int = 0  # the config's own layout: where it ranks among the distinct fitting ones
    lacks: str = ""  # why it does not fit; empty when it does

    @property
    def step(self) -> float:
        return sum(self.times.values())

    @property
    def dp(self) -> int:
        return self.par.dp(self.train_gpus)

    def layout_text(self) -> str:
        p = self.par
        experts = f" ep={p.ep} etp={p.etp}" if p.etp is not None else ""  # the search sets etp on MoE models only
        return f"tp={p.tp} pp={p.pp} vpp={p.virtual_stages} cp={p.cp}{experts} dp={self.dp}, recompute {self.recompute.label()}"

    def placement_text(self) -> str:
        count = self.engine_gpus // self.engine_tp
        engines = f"{count} engine{'s' if count > 1 else ''} x tp {self.engine_tp}"
        if self.mode == "colocate":
            return f"colocate: {self.train_gpus} GPUs train and serve, {engines}"
        return f"disaggregate: {self.train_gpus} GPUs train, {self.engine_gpus} serve ({engines})"

    def config_keys(self) -> dict:
        p = self.par
        experts = {"parallel.ep": p.ep, "parallel.etp": p.etp} if p.etp is not None else {}
        keys = {"parallel.tp": p.tp, "parallel.pp": p.pp, "parallel.vpp": p.vpp, "parallel.cp": p.cp,
                **experts, "parallel.sequence_parallel": p.sequence_parallel,
                "parallel.distributed_optimizer": True, **self.recompute.config_keys(),
                "cluster.mode": self.mode, "rollout.tp_size": self.engine_tp,
                "rollout.num_engines": self.engine_gpus // self.engine_tp,
                "rollout.mem_fraction_static": math.floor(self.engine_fraction * 100) / 100}
        if self.mode == "disaggregate":
            keys["cluster.engine_gpus"] = self.engine_gpus
        return keys


@dataclass
class SearchResult:
    fits: list[Candidate]
    closest: list[Candidate]
    considered: int
    fitting: int  # distinct layouts that fit
    assumptions: Assumptions
    gpus: int
    gpu_memory_gib: float
    configured: Candidate | str  # the config's own layout, or why it is not one of these


def _powers_of_two(limit: int) -> list[int]:
    return [2 ** i for i in range(int(math.log2(limit)) + 1)] if limit >= 1 else []


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def recompute_choices(shape: ModelShape, chunk_layers: int) -> list[Recompute]:
    block = "moe" if shape.num_experts else "mlp"
    choices = [Recompute(), Recompute("selective", ("core_attn",)), Recompute("selective", ("layernorm", block)),
               Recompute("full", (), "uniform", 1)]
    if chunk_layers >= 2:
        choices.append(Recompute("full", (), "block", chunk_layers // 2))
    return choices


def train_layouts(shape: ModelShape, world: int, gpus_per_node: int):
    """(ParallelConfig, Recompute) pairs worth trying on `world` train GPUs, before the rules."""
    moe = bool(shape.num_experts)
    for tp in _powers_of_two(min(gpus_per_node, world)):
        for pp in (p for p in _divisors(shape.num_layers) if world % p == 0 and p <= world // tp):
            vpps = [1] if pp == 1 else [v for v in (1, 2, 3, 4) if (shape.num_layers // pp) % v == 0]
            for vpp in vpps:
                for cp in _powers_of_two(world // (tp * pp)):
                    eps = [e for e in _powers_of_two(world // pp) if shape.num_experts % e == 0] if moe else [1]
                    for ep in eps:
                        for etp in (sorted({1, tp}) if moe else [None]):
                            par = ParallelConfig(tp=tp, pp=pp, vpp=vpp if vpp > 1 else None, cp=cp, ep=ep, etp=etp,
                                                 sequence_parallel=tp > 1, distributed_optimizer=True,
                                                 overlap_grad_reduce=True, overlap_param_gather=True)
                            for recompute in recompute_choices(shape, shape.num_layers // (pp * vpp)):
                                yield par, recompute


class Searcher:
    def __init__(self, cfg: RunConfig, shape: ModelShape, gpus: int, gpu_memory_gib: float, a: Assumptions):
        self.cfg, self.shape, self.gpus, self.a = cfg, shape, gpus, a
        self.gpus_per_node = min(cfg.cluster.gpus_per_node, gpus)
        self.gpu_memory = gpu_memory_gib * GIB
        self.budget = (gpu_memory_gib - a.reserve_gib) * GIB
        train, rollout = cfg.train, cfg.rollout
        self.max_sequence = cfg.data.max_prompt_tokens + rollout.max_new_tokens
        self.needs = RunNeeds(max_sequence_tokens=self.max_sequence, micro_batch_tokens=train.micro_batch_tokens,
                              samples_per_optimizer_step=train.mini_batch_size * train.n_samples_per_prompt,
                              padded_vocab=padded_vocab(shape.vocab_size, cfg.model.make_vocab_size_divisible_by),
                              ipc_weight_sync=rollout.weight_sync == "tensor")
        self.work = Workload(sequences_per_step=train.train_batch_size * train.n_samples_per_prompt,
                             optimizer_steps=train.optimizer_steps_per_rl_step,
                             max_prompt_tokens=cfg.data.max_prompt_tokens, max_new_tokens=rollout.max_new_tokens,
                             micro_batch_tokens=train.micro_batch_tokens,
                             forward_only_passes=1 + (1 if cfg.algo.needs_reference_model else 0),
                             gpus_per_node=self.gpus_per_node, dtype_bytes=DTYPE_BYTES[cfg.model.dtype])
        self.considered = 0

    def train_candidate(self, par: ParallelConfig, recompute: Recompute, world: int) -> Candidate | None:
        """The layout with its train memory and, when that fits, its train time; None when a rule refuses it."""
        self.considered += 1
        if layout_problem(self.shape, self.needs, par, world, recompute):
            return None
        dp = par.dp(world)
        layout = TrainLayout(tp=par.tp, pp=par.pp, cp=par.cp, ep=par.ep, etp=par.expert_tp, dp=dp,
                             expert_dp=world // (par.expert_tp * par.ep * par.pp), distributed_optimizer=par.distributed_optimizer,
                             sequence_parallel=par.sequence_parallel, recompute=recompute.kind,
                             micro_batch_tokens=self.work.micro_batch_tokens, dtype=self.cfg.model.dtype)
        memory = train_memory_with(self.shape, layout, recompute, par.virtual_stages, micro_batches(self.work, self.a, dp),
                                   fused=self.cfg.model.transformer_impl != "local")
        c = Candidate(par, recompute, "", world, 0, 0, memory, sum(memory.values()), self.budget)
        if c.peak > self.budget:
            c.lacks = f"train rank needs {c.peak / GIB:.1f} GiB"
        else:
            c.times = train_time(self.shape, self.work, self.a, par, world, recompute,
                                 train_params_per_gpu(self.shape, layout))
        return c

    def train_candidates(self, world: int) -> list[Candidate]:
        found = (self.train_candidate(par, recompute, world)
                 for par, recompute in train_layouts(self.shape, world, self.gpus_per_node))
        return [c for c in found if c is not None]

    @functools.lru_cache(maxsize=None)
    def rollout(self, engines: int, engine_tp: int, kv_pool: float) -> tuple[float, int]:
        """(seconds, mean-length sequences each engine's KV holds), or (inf, 0) when a full-length one does not fit."""
        per_token = kv_bytes_per_token(self.shape, engine_tp)
        if kv_pool < self.max_sequence * per_token:
            return math.inf, 0
        held = int(kv_pool // (self.work.mean_sequence(self.a) * per_token))
        return rollout_time(self.shape, self.work, self.a, engines, engine_tp, held), held

    def engine_tps(self) -> list[int]:
        kv = self.shape.num_kv_heads
        return [t for t in _powers_of_two(self.gpus_per_node) if kv % t == 0 or t % kv == 0]

    def colocate(self, c: Candidate, engine_tps: list[int]) -> Candidate:
        """Engines of the fastest tp among `engine_tps` on every GPU, their KV cache in what the trainer's
        resident state leaves."""
        c.mode, c.engine_gpus, c.engine_tp = "colocate", c.train_gpus, engine_tps[-1]
        if c.lacks:
            return c
        weights = total_params(self.shape) * 2
        resident = sum(v for k, v in c.train_bytes.items() if k in RESIDENT)
        (seconds, held), c.engine_tp = min((self.rollout(c.train_gpus // tp, tp, self.budget - resident - weights / tp), tp)
                                           for tp in engine_tps)
        # the engine's least: its weights and one full-length sequence; the rest of the GPU is KV cache
        least = resident + weights / c.engine_tp + self.max_sequence * kv_bytes_per_token(self.shape, c.engine_tp)
        c.peak = max(c.peak, least)
        if math.isinf(seconds):
            c.lacks = (f"engines find no room for one {self.max_sequence}-token sequence beside the trainer's "
                       f"{resident / GIB:.1f} GiB of weights, grads and optimizer state")
        else:
            c.sequences_in_kv, c.engine_fraction = held, (self.budget - resident) / self.gpu_memory
            c.times.update({"rollout": seconds, "weight sync": weight_sync_time(self.shape, self.a, "colocate")})
        return c

    def disaggregate(self, c: Candidate, engine_gpus: int, engine_tps: list[int]) -> Candidate:
        """Engines of the fastest tp among `engine_tps` on `engine_gpus` GPUs of their own."""
        weights = total_params(self.shape) * 2
        options = [(self.rollout(engine_gpus // tp, tp, self.budget - weights / tp), tp)
                   for tp in engine_tps if tp <= engine_gpus and engine_gpus % tp == 0]
        (seconds, held), engine_tp = min(options) if options else ((math.inf, 0), engine_tps[-1])
        c.mode, c.engine_gpus, c.engine_tp = "disaggregate", engine_gpus, engine_tp
        if not c.lacks and math.isinf(seconds):
            c.lacks = f"no engine of tp {'/'.join(map(str, engine_tps))} holds the weights and one full-length sequence"
        if not c.lacks:
            c.sequences_in_kv, c.engine_fraction = held, self.budget / self.gpu_memory
            sync = weight_sync_time(self.shape, self.a, "disaggregate")
            if self.a.async_rollout:
                train = sum(c.times.values()) + sync
                c.times = {"overlapped train": train, "rollout beyond train": max(0.0, seconds - train)}
            else:
                c.times.update({"rollout": seconds, "weight sync": sync})
        return c

    def engine_gpu_choices(self) -> list[int]:
        if self.needs.ipc_weight_sync:
            return []  # CUDA IPC reaches only engines on the trainer's GPUs
        step = self.gpus_per_node if self.gpus > self.gpus_per_node else max(1, self.gpus // 2)
        return list(range(step, self.gpus, step))

    def all_candidates(self) -> list[Candidate]:
        tps = self.engine_tps()
        out = [self.colocate(c, tps) for c in self.train_candidates(self.gpus)]
        for engine_gpus in self.engine_gpu_choices():
            out += [self.disaggregate(c, engine_gpus, tps) for c in self.train_candidates(self.gpus - engine_gpus)]
        return out

    def configured(self) -> Candidate | str:
        """The config's own layout and placement, when it is laid out on these GPUs; else why not."""
        cfg, par = self.cfg, self.cfg.parallel
        if cfg.cluster.total_gpus != self.gpus:
            return f"the config's cluster has {cfg.cluster.total_gpus} GPUs, not {self.gpus}"
        m = cfg.model
        recompute = Recompute(m.recompute, tuple(m.recompute_modules or ("core_attn",)) if m.recompute == "selective"
                              else (), m.recompute_method or "uniform", m.recompute_num_layers or 1)
        own = self.train_candidate(par, recompute, cfg.cluster.train_gpus)
        if own is None:
            return layout_problem(self.shape, self.needs, par, cfg.cluster.train_gpus, recompute) or ""
        tps = [cfg.rollout.tp_size]
        if cfg.cluster.mode == "colocate":
            return self.colocate(own, tps)
        return self.disaggregate(own, cfg.cluster.engine_gpus, tps)


def search(cfg: RunConfig, shape: ModelShape, gpus: int, gpu_memory_gib: float, a: Assumptions,
           keep: int = 10) -> SearchResult:
    nodes_ok = gpus <= cfg.cluster.gpus_per_node or gpus % cfg.cluster.gpus_per_node == 0
    if gpus < 1 or not nodes_ok:
        raise ValueError(f"--gpus {gpus}: expected a positive number of GPUs, whole nodes of cluster.gpus_per_node="
                         f"{cfg.cluster.gpus_per_node} beyond one node")
    if gpu_memory_gib <= a.reserve_gib:
        raise ValueError(f"--gpu-memory {gpu_memory_gib} GiB leaves nothing beside the {a.reserve_gib} GiB reserve")
    if cfg.rollout.weight_sync == "tensor" and gpus > cfg.cluster.gpus_per_node:
        raise ValueError(f"--gpus {gpus}: rollout.weight_sync: tensor (CUDA IPC) cannot cross nodes "
                         f"(cluster.gpus_per_node={cfg.cluster.gpus_per_node}); search with --set "
                         "rollout.weight_sync=distributed or disk")
    searcher = Searcher(cfg, shape, gpus, gpu_memory_gib, a)
    candidates = searcher.all_candidates()
    considered = searcher.considered
    fits = sorted((c for c in candidates if not c.lacks), key=lambda c: (c.step, c.peak))
    closest = sorted((c for c in candidates if c.lacks), key=lambda c: c.peak)
    distinct = _distinct(fits, len(fits))
    own = searcher.configured()
    if isinstance(own, Candidate) and not own.lacks:
        own.rank = 1 + sum(c.step < own.step for c in distinct)
    return SearchResult(distinct[:keep], _distinct(closest, keep), considered, len(distinct), a, gpus,
                        gpu_memory_gib, own)


def _distinct(candidates: list[Candidate], keep: int) -> list[Candidate]:
    """The first of each family: candidates that differ only in vpp or etp show as one."""
    out, seen = [], set()
    for c in candidates:
        p = c.par
        key = (c.mode, c.engine_gpus, c.engine_tp, p.tp, p.pp, p.cp, p.ep, c.recompute)
        if key not in seen:
            seen.add(key)
            out.append(c)
        if len(out) == keep:
            break
    return out
