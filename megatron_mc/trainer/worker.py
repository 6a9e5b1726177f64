"""One train rank: the policy on Megatron-Core (DDP + Megatron optimizer + LR schedule) and what the
driver asks of it, through Megatron's pipeline schedule so any TP/PP/DP layout runs the same code.

Every rank receives the whole batch and takes its data-parallel share (and, under context parallelism,
its zig-zag part of every sequence); results come back from the ranks that hold them (the last pipeline
stage's first tensor- and context-parallel rank), keyed by batch position, and group.py merges them.
Construct only in a process that may change torch's global state: on CPU the platform layer
(megatron_mc.platform) is installed before Megatron-Core is used.
"""
from __future__ import annotations

import asyncio
import dataclasses
import shutil
import sys
from functools import partial
from pathlib import Path
from typing import Optional

import torch

from megatron_mc.algo import vocab_parallel_logprobs_and_entropy
from megatron_mc.algo.context_parallel import metric_values, reduce_metrics
from megatron_mc.checkpoint.hf_export import INDEX, save_hf_weights
from megatron_mc.checkpoint.hf_import import load_hf_weights
from megatron_mc.config import RunConfig
from megatron_mc.models.build import build_model, load_adapter, unwrap
from megatron_mc.models.layer_spec import choose_impl, fp8_token_multiple
from megatron_mc.parallel import state
from megatron_mc.parallel.config import sequence_length_multiple
from megatron_mc.parallel.training import build_optimizer, wrap_ddp
from megatron_mc.trainer.batch import TrainBatch
from megatron_mc.trainer.checkpointing import load_training_checkpoint, save_training_checkpoint
from megatron_mc.trainer.lr_schedule import make_lr_scheduler
from megatron_mc.trainer.balance import plan_micro_batches
from megatron_mc.trainer.microbatches import MicroBatch, make_micro_batch, padding_micro_batch, shard_indices
from megatron_mc.trainer.moe_diagnostics import MoEDiagnostics, find_routers
from megatron_mc.trainer.objectives import PolicyGradient, SupervisedCrossEntropy, units
from megatron_mc.trainer.offload import RESIDENT, HostOffload
from megatron_mc.trainer.reference import ReferenceWeights
from megatron_mc.trainer.routing_replay import RoutingReplay
from rollout.gpu_ledger import book, my_gpus

class TrainWorker:
    def __init__(self, cfg: RunConfig, hf_dir: str):
        self.cfg = cfg
        impl = choose_impl(cfg.model)
        if impl == "local" and cfg.model.local_attention == "dot_product" and cfg.parallel.cp == 1 \
                and cfg.train.pack_sequences:
            raise ValueError("model.local_attention: dot_product (Megatron-Core's DotProductAttention) takes no "
                             "packed sequences; set train.pack_sequences: false or model.local_attention: sdpa")
        self.device = state.initialize(cfg.parallel)
        from megatron.core import parallel_state as ps

        self.ps = ps
        model_cfg = dataclasses.replace(cfg.model, hf_dir=hf_dir)
        self.hf_dir = hf_dir
        self.adapter = load_adapter(model_cfg)
        chunks = build_model(model_cfg, cfg.parallel, self.adapter, routing_replay=cfg.algo.routing_replay)
        load_hf_weights(chunks, self.adapter, hf_dir)
        self.moe_diagnostics = MoEDiagnostics(find_routers(chunks) if cfg.train.moe_diagnostics else [])
        self.model = wrap_ddp(chunks, cfg.parallel)
        self.routing_replay = RoutingReplay(self.model) if cfg.algo.routing_replay else None
        # the KL term's reference: the start weights, taken before any training checkpoint is loaded
        self.reference = ReferenceWeights(self.model) if cfg.algo.needs_reference_model else None
        train = cfg.train
        self.optimizer = build_optimizer(self.model, cfg.parallel, lr=train.lr, min_lr=train.min_lr,
                                         weight_decay=train.weight_decay,
                                         adam_beta1=train.adam_beta1, adam_beta2=train.adam_beta2,
                                         clip_grad=train.grad_clip)
        self.scheduler = make_lr_scheduler(self.optimizer, train,
                                           train.max_steps * train.optimizer_steps_per_rl_step)
        self._configure_schedule()
        self.dp_rank = ps.get_data_parallel_rank()
        self.dp_size = ps.get_data_parallel_world_size()
        self.cp_size = ps.get_context_parallel_world_size()
        self.cp_group = ps.get_context_parallel_group() if self.cp_size > 1 else None
        self.reports = (ps.is_pipeline_last_stage() and ps.get_tensor_model_parallel_rank() == 0
                        and ps.get_context_parallel_rank() == 0)
        # packed, each sequence's segment splits into 2 * cp zig-zag chunks; a whole row (or a padded
        # row's width) also splits over the TP ranks under sequence parallelism, and each rank's share
        # is a multiple of what TE's FP8 GEMMs assert
        self.segment_multiple = 2 * self.cp_size if self.cp_size > 1 else 1
        self.row_multiple = (sequence_length_multiple(self.cp_size, cfg.parallel.tp, cfg.parallel.sequence_parallel)
                             * fp8_token_multiple(cfg.model))
        # Float16Module upcasts the logits to fp32 unless told not to: the log-prob path takes bf16 chunk
        # by chunk, so the fp32 copy of [tokens, vocab / tp] is never made
        self.output_kwargs = {"fp32_output": False} if cfg.model.dtype != "float32" else {}
        # where attention reads packed boundaries (Segments.packed_seq_params)
        self.boundaries_device = self.device if impl == "transformer_engine" else torch.device("cpu")
        self._loop = asyncio.new_event_loop()
        self._syncs: dict = {}
        self._offload = HostOffload(self.model, self.optimizer, self.device)
        self._holder = f"train rank {torch.distributed.get_rank()}"
        self._gpus = _ray_gpus()
        self._book(RESIDENT)

    def _configure_schedule(self) -> None:
        """What Megatron-LM's training loop sets on the model config for its schedules."""
        from megatron.core.distributed import finalize_model_grads

        config = unwrap(self.model[0]).config
        config.finalize_model_grads_func = finalize_model_grads
        config.grad_scale_func = self.optimizer.scale_loss
        # micro-batches differ in shape: the pipeline stages exchange shapes before tensors
        config.variable_seq_lengths = self.cfg.parallel.pp > 1
        if self.cfg.parallel.virtual_stages > 1:
            # Forward and backward transfers in separate calls (Megatron-LM's default for interleaving):
            # batched together under pp=2, where the previous and next stage are the same rank, the two
            # shape messages to that rank are received in the wrong order and micro-batches swap shapes.
            config.overlap_p2p_comm, config.batch_p2p_comm = True, False
        if self.cfg.parallel.overlap_grad_reduce:
            no_sync = [chunk.no_sync for chunk in self.model]
            config.no_sync_func = no_sync[0] if len(no_sync) == 1 else no_sync

    # ---- forward / backward through Megatron's schedule ----------------------------------------------
    def _micro_batches(self, batch: TrainBatch, rollout: bool = True, compare: bool = False) -> list[MicroBatch]:
        """This data-parallel rank's micro-batches of `batch`: every rank plans the whole batch the same way
        (balance.py: near-equal token loads, the same count on every rank, as expert-parallel all-to-alls
        need), takes its own share and fills empty slots with padding micro-batches. `rollout`: the
        sequences came from the engines, whose routes routing replay follows (supervised data has none).
        `compare`: carry the engine's routes, when every sequence has them, for the MoE diagnostics'
        routing agreement."""
        lengths = [len(p) + len(r) for p, r in zip(batch.prompt_ids, batch.response_ids)]
        par, packed = self.cfg.parallel, self.cfg.train.pack_sequences
        plan = plan_micro_batches(lengths, self.dp_size, self.cfg.train.micro_batch_tokens, packed=packed,
                                  segment_multiple=self.segment_multiple, row_multiple=self.row_multiple,
                                  # Megatron-Core's interleaved schedule runs a multiple of pp micro-batches
                                  count_multiple=par.pp if par.virtual_stages > 1 else 1)
        replay = self.routing_replay is not None and rollout
        compare = (compare and bool(self.moe_diagnostics.routers) and batch.routed_experts is not None
                   and all(r is not None for r in batch.routed_experts))
        routes = self.routing_replay.shape if replay else self.moe_diagnostics.route_shape if compare else None
        return [make_micro_batch(batch.select(group), packed=packed, segment_multiple=self.segment_multiple,
                                 row_multiple=self.row_multiple, indices=group, route_shape=routes,
                                 mark_unrouted=compare)
                if group else padding_micro_batch(self.row_multiple, route_shape=routes if replay else None)
                for group in plan[self.dp_rank]]

    def _run(self, mbs: list[MicroBatch], loss_of, forward_only: bool) -> list:
        """Run the schedule over `mbs`; `loss_of(mb, part, output)` is the last stage's loss function, with
        `part` this context-parallel rank's share of `mb` (`mb` itself without CP). Returns what it
        returned for each micro-batch on the last stage (nothing elsewhere); a padding micro-batch
        returns no rows (forward only) or a zero loss of weight 0 with no metrics."""
        from megatron.core.pipeline_parallel import get_forward_backward_func

        def step(data_iterator, model):
            mb = next(data_iterator)
            part = mb.context_part(self.cp_size, self.ps.get_context_parallel_rank())
            part = part.to(self.device)
            packed = None if mb.segments is None else mb.segments.packed_seq_params(self.boundaries_device)
            if part.routes is not None and self.routing_replay is not None:
                self.routing_replay.set_targets(model, part.routes)
            self.moe_diagnostics.expect(None if mb.padding else part.routes)
            output = model(part.tokens, part.positions, attention_mask=None, packed_seq_params=packed,
                           **self.output_kwargs)
            return output, partial(_padding_loss if mb.padding else loss_of, mb, part)

        iterators = [iter(mbs) for _ in self.model]
        if self.routing_replay is not None:
            self.routing_replay.clear()  # the previous schedule's targets, left queued when nothing recomputed
        return get_forward_backward_func()(
            forward_step_func=step, data_iterator=iterators if len(iterators) > 1 else iterators[0],
            model=self.model, num_microbatches=len(mbs), seq_length=max(mb.tokens.shape[1] for mb in mbs),
            micro_batch_size=max(mb.tokens.shape[0] for mb in mbs), forward_only=forward_only,
            collect_non_loss_data=forward_only)

    def _response_logprobs(self, part: MicroBatch, logits: torch.Tensor, temperature: float, with_entropy: bool
                           ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(log p, entropy or None) in the part's loss view [n, L], zeros off the response, from the vocab
        shard of every input position (cheaper than a masked copy of the logits: the softmax over a
        position costs a few flops per vocab entry against the output layer's 2 * hidden). The logits
        take the gradient in place: nothing else uses them."""
        logprobs, entropy = vocab_parallel_logprobs_and_entropy(
            logits.view(-1, logits.shape[-1]), part.targets.view(-1), temperature,
            self.ps.get_tensor_model_parallel_group(), chunk_size=self.cfg.algo.logprob_chunk_size,
            grad_in_logits=True, vocab_size=self.adapter.vocab_size, with_entropy=with_entropy)
        return part.per_sequence(logprobs), None if entropy is None else part.per_sequence(entropy)

    # ---- device memory between phases (colocated engines) ------------------------------------------
    def offload(self, keep_weights: bool = False) -> int:
        """Collective (a deferred parameter all-gather finishes first): move this rank's optimizer state
        and gradient buffers (and, unless keep_weights, its parameters) to host memory and free the device
        memory. keep_weights leaves the parameters for a weight update; a later offload() moves them too.
        Returns the device bytes freed."""
        self._params_current()
        freed = self._offload.offload(keep_weights)
        # Megatron's activation workspace (sequence-parallel gathers) goes too; it is rebuilt on demand.
        self.ps.get_global_memory_buffer().buffer.clear()
        self._book(self._offload.state)
        return freed

    def onload(self) -> None:
        """Bring back everything offload() moved; the next step equals the one without the round trip."""
        self._offload.onload()
        self._book(RESIDENT)

    def _book(self, phase: str) -> None:
        book(self._holder, "train", phase, self._gpus)

    def _computing(self, what: str) -> None:
        """The rank holds activations on top of its resident state from here on: torch's caching allocator
        keeps what a step reserved until offload() empties it, so the ledger stays at "training" too."""
        if self._offload.state != RESIDENT:
            raise RuntimeError(f"{self._holder}: {what} while offloaded ({self._offload.state!r}: see "
                               "trainer/offload.py); call onload() before computing")
        self._book("training")

    # ---- what the driver asks ----------------------------------------------------------------------
    def compute_logprobs(self, batch: TrainBatch) -> dict[int, list[float]]:
        """Log-probs of this rank's share of the responses at batch.temperature, by batch position."""
        self._computing("compute_logprobs")
        # the forward at the weights that sampled the batch (synchronous training): the MoE diagnostics
        # compare its routing with the engine's
        with self.moe_diagnostics.comparing():
            return self._logprobs(batch, compare=True)

    def _logprobs(self, batch: TrainBatch, compare: bool = False) -> dict[int, list[float]]:
        mbs = self._micro_batches(batch, compare=compare)  # a rank with no sequence still runs the schedule

        def collect(mb, part, output, non_loss_data=True):
            logprobs, _ = self._response_logprobs(part, output, batch.temperature, with_entropy=False)
            parts = [logprobs]
            if self.cp_group is not None:
                parts = [torch.empty_like(logprobs) for _ in range(self.cp_size)]
                torch.distributed.all_gather(parts, logprobs.contiguous(), group=self.cp_group)
            return [(mb, parts)]  # read once the schedule is done: no device wait per micro-batch

        with torch.no_grad():
            outputs = self._run(mbs, collect, forward_only=True)
        if not self.reports:
            return {}
        rows = {}
        for mb, parts in (pair for collected in outputs for pair in collected):
            parts = [p.cpu() for p in parts]
            logprobs = parts[0] if len(parts) == 1 else mb.merge_context_parts(parts)
            rows.update(zip(mb.indices, mb.response_values(logprobs)))
        return rows

    def compute_ref_logprobs(self, batch: TrainBatch) -> dict[int, list[float]]:
        """compute_logprobs under the reference policy (the start weights), for the KL term."""
        if self.reference is None:
            raise RuntimeError("reference log-probs need algo.kl_coef > 0: the trainer keeps the reference "
                               "weights only when the KL term is on")
        self._computing("compute_ref_logprobs")
        self._params_current()
        with self.reference.swapped_in():
            return self._logprobs(batch)

    def train(self, batch: TrainBatch) -> dict:
        """cfg.train.optimizer_steps_per_rl_step optimizer steps over consecutive mini-batches of `batch`
        with the policy-gradient loss (batch.old_logprobs must be set)."""
        objective = PolicyGradient(self.cfg.algo, batch)
        steps = self.cfg.train.optimizer_steps_per_rl_step
        return self._optimize([batch.select(shard_indices(len(batch), i, steps)) for i in range(steps)], objective)

    def train_sft(self, batch: TrainBatch) -> dict:
        """One optimizer step of token-mean cross-entropy on the response tokens of the whole batch."""
        return self._optimize([batch], SupervisedCrossEntropy(), rollout=False)

    def _optimize(self, mini_batches: list[TrainBatch], objective, rollout: bool = True) -> dict:
        records, steps = [], []
        self._computing("training")
        with self.moe_diagnostics.recording():
            for mini in mini_batches:
                record, step = self._optimizer_step(mini, objective, rollout)
                records += record
                steps.append(step)
        return {"records": records if self.reports else [], "steps": steps, "moe": self.moe_diagnostics.read()}

    def _optimizer_step(self, mini: TrainBatch, objective, rollout: bool) -> tuple[list, dict]:
        total_units = units(objective.unit, [len(r) for r in mini.response_ids])
        mbs = self._micro_batches(mini, rollout)
        # the schedule divides each loss by len(mbs), padding included, the same count on every rank
        scale_base = len(mbs) * self.dp_size / total_units

        def loss_of(mb, part, output):
            logprobs, entropy = self._response_logprobs(part, output, mini.temperature, with_entropy=True)
            loss, metrics = objective.loss(logprobs, entropy, part, self.cp_group)
            scale = scale_base * units(objective.unit, mb.response_lengths)
            metrics = reduce_metrics(metrics, part.num_tokens, self.cp_group)
            return loss * scale, {"weight": mb.num_tokens, "metrics": metrics}

        for chunk in self.model:
            chunk.zero_grad_buffer()
        self.optimizer.zero_grad()
        records = self._run(mbs, loss_of, forward_only=False)
        _, grad_norm, _ = self.optimizer.step()
        self.scheduler.step(increment=1)
        step = {"grad_norm": float(grad_norm) if grad_norm is not None else float("nan"),
                "lr": float(self.optimizer.param_groups[0]["lr"]), "micro_batches": len(mbs)}
        return _read_metrics(records), step

    # ---- weights out -------------------------------------------------------------------------------
    def _params_current(self) -> None:
        """With overlapped parameter gathers the distributed optimizer leaves the gather to the next
        forward; anything reading the weights now needs them gathered."""
        if self.cfg.parallel.overlap_param_gather:
            for chunk in self.model:
                chunk.start_param_sync(force_sync=True)

    def update_engine_weights(self, kind: str, engine_urls: list[str], version: int, **options) -> None:
        """Collective: push this policy's weights into the engines (megatron_mc/trainer/engine_sync.py says
        which ranks send what); the transports are kept across calls, so a `distributed` group forms once."""
        from megatron_mc.trainer.engine_sync import EngineWeightSync
        from megatron_mc.weights.buckets import iter_hf_buckets

        self._params_current()
        if "engines" not in self._syncs:
            self._syncs["engines"] = EngineWeightSync(
                lambda bucket_bytes: iter_hf_buckets(self.model, self.adapter, bucket_bytes), self._loop)
        self._syncs["engines"].update(kind, engine_urls, version, **options)

    def export_hf(self, out_dir: str, hf_config_dir: Optional[str] = None) -> list[str]:
        """Collective. Safetensors shards + index in out_dir, plus the config and tokenizer files of
        hf_config_dir (default: the checkpoint the run started from)."""
        self._params_current()
        names = save_hf_weights(self.model, self.adapter, out_dir)
        if torch.distributed.get_rank() == 0:
            copy_non_weight_files(Path(hf_config_dir or self.hf_dir), Path(out_dir))
        torch.distributed.barrier()
        return names

    def save_checkpoint(self, step_dir: str) -> str:
        self._params_current()
        return str(save_training_checkpoint(step_dir, self.model, self.optimizer, self.scheduler, self.adapter.hf,
                                            self.cfg.checkpoint.optimizer_resharding))

    def load_checkpoint(self, step_dir: str) -> None:
        load_training_checkpoint(step_dir, self.model, self.optimizer, self.scheduler)

    def shutdown(self) -> None:
        for sync in self._syncs.values():
            self._loop.run_until_complete(sync.close())
        self._loop.close()
        state.destroy()


def _ray_gpus() -> list:
    """The (node, GPU) pairs Ray gave this rank's actor, for the rehearsal's memory ledger; none outside
    Ray (a Ray actor has imported ray; a plain process, a benchmark, may run where Ray is not installed)."""
    ray = sys.modules.get("ray")
    return my_gpus() if ray is not None and ray.is_initialized() else []


def _read_metrics(records: list[dict]) -> list[tuple[int, dict[str, float]]]:
    """(weight, metrics) per micro-batch record, the tensors of all of them read from the device at once."""
    values = metric_values({(i, key): value for i, r in enumerate(records) for key, value in r["metrics"].items()})
    read: list[dict[str, float]] = [{} for _ in records]
    for (i, key), value in values.items():
        read[i][key] = value
    return [(r["weight"], metrics) for r, metrics in zip(records, read)]


def _padding_loss(mb: MicroBatch, part: MicroBatch, output: torch.Tensor, non_loss_data: bool = False):
    """A padding micro-batch's loss: zero, yet tied to the output so its backward runs (and meets the
    other ranks' collectives) like any other; forward only, it has no rows."""
    if non_loss_data:
        return []
    return output.sum() * 0.0, {"weight": 0, "metrics": {}}


def copy_non_weight_files(source: Path, target: Path) -> None:
    """config.json, generation_config.json, tokenizer files...: everything but the weights, each written
    to a temporary name and renamed."""
    for path in source.iterdir():
        if not path.is_file() or path.suffix in (".safetensors", ".bin") or path.name == INDEX:
            continue
        tmp = target / f".{path.name}.tmp"
        shutil.copyfile(path, tmp)
        tmp.replace(target / path.name)
