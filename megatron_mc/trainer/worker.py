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
from functools import partial
from pathlib import Path
from typing import Optional

import torch

from megatron_mc.algo.context_parallel import reduce_metrics
from megatron_mc.checkpoint.hf_export import INDEX, save_hf_weights
from megatron_mc.checkpoint.hf_import import load_hf_weights
from megatron_mc.config import RunConfig
from megatron_mc.models.build import build_model, load_adapter, unwrap
from megatron_mc.models.forward import gather_context_parallel
from megatron_mc.parallel import state
from megatron_mc.parallel.config import sequence_length_multiple
from megatron_mc.parallel.training import build_optimizer, wrap_ddp
from megatron_mc.trainer.batch import TrainBatch
from megatron_mc.trainer.checkpointing import load_training_checkpoint, save_training_checkpoint
from megatron_mc.trainer.lr_schedule import make_lr_scheduler
from megatron_mc.trainer.microbatches import MicroBatch, micro_batches, padded_to, schedule_length, shard_indices
from megatron_mc.trainer.objectives import PolicyGradient, SupervisedCrossEntropy, units
from megatron_mc.trainer.offload import RESIDENT, HostOffload
from megatron_mc.trainer.reference import ReferenceWeights
from rollout.gpu_ledger import book, my_gpus

# Finite, so that p * log p of a padding column is 0 * (-1e30) = 0, not 0 * (-inf) = nan.
_PADDED_VOCAB_LOGIT = -1e30


class TrainWorker:
    def __init__(self, cfg: RunConfig, hf_dir: str):
        self.cfg = cfg
        self.device = state.initialize(cfg.parallel)
        from megatron.core import parallel_state as ps

        self.ps = ps
        model_cfg = dataclasses.replace(cfg.model, hf_dir=hf_dir)
        self.hf_dir = hf_dir
        self.adapter = load_adapter(model_cfg)
        chunks = build_model(model_cfg, cfg.parallel, self.adapter)
        load_hf_weights(chunks, self.adapter, hf_dir)
        self.model = wrap_ddp(chunks, cfg.parallel)
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
        self.length_multiple = sequence_length_multiple(self.cp_size, cfg.parallel.tp, cfg.parallel.sequence_parallel)
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
    def _micro_batches(self, batch: TrainBatch) -> list[MicroBatch]:
        """`batch` (this rank's share) packed into micro-batches, padded to the count every data-parallel
        rank runs (see microbatches.py: expert-parallel all-to-alls pair up micro-batches across them)."""
        mbs = micro_batches(batch, self.cfg.train.micro_batch_tokens, multiple_of=self.length_multiple)
        most = torch.tensor([len(mbs)], dtype=torch.int64, device=self.device)
        torch.distributed.all_reduce(most, op=torch.distributed.ReduceOp.MAX,
                                     group=self.ps.get_data_parallel_group(with_context_parallel=True))
        count = schedule_length(int(most.item()), self.cfg.parallel.pp, self.cfg.parallel.virtual_stages > 1)
        return padded_to(mbs, count, multiple_of=self.length_multiple)

    def _run(self, mbs: list[MicroBatch], loss_of, forward_only: bool) -> list:
        """Run the schedule over `mbs`; `loss_of(mb, part, output)` is the last stage's loss function, with
        `part` this context-parallel rank's share of `mb` (`mb` itself without CP). Returns what it
        returned for each micro-batch on the last stage (nothing elsewhere); a padding micro-batch
        returns no rows (forward only) or a zero loss of weight 0 with no metrics."""
        from megatron.core.pipeline_parallel import get_forward_backward_func

        def step(data_iterator, model):
            mb = next(data_iterator)
            part = mb.context_part(self.cp_size, self.ps.get_context_parallel_rank()) if self.cp_size > 1 else mb
            part = part.to(self.device)
            output = model(part.tokens, part.positions, attention_mask=None)
            return output, partial(_padding_loss if mb.padding else loss_of, mb, part)

        iterators = [iter(mbs) for _ in self.model]
        widest = max(mb.tokens.shape[1] for mb in mbs)
        return get_forward_backward_func()(
            forward_step_func=step, data_iterator=iterators if len(iterators) > 1 else iterators[0],
            model=self.model, num_microbatches=len(mbs), seq_length=widest,
            micro_batch_size=max(mb.num_sequences for mb in mbs), forward_only=forward_only,
            collect_non_loss_data=forward_only)

    def _response_logprobs(self, part: MicroBatch, logits: torch.Tensor, temperature: float
                           ) -> tuple[torch.Tensor, torch.Tensor]:
        """(log p, entropy) [n, L] of the micro-batch part's positions (zeros off the response), from the
        vocab shard."""
        from megatron_mc.algo import vocab_parallel_logprobs_and_entropy

        mask = part.response_mask
        picked = logits[mask]  # a fresh [tokens, vocab / tp] tensor: its gradient may overwrite it
        shard = picked.shape[-1]
        start = self.ps.get_tensor_model_parallel_rank() * shard
        if start + shard > self.adapter.vocab_size:
            columns = torch.arange(start, start + shard, device=picked.device)
            picked = picked.masked_fill(columns >= self.adapter.vocab_size, _PADDED_VOCAB_LOGIT)
        targets = part.targets[mask]
        logprobs, entropy = vocab_parallel_logprobs_and_entropy(
            picked, targets, temperature, self.ps.get_tensor_model_parallel_group(),
            chunk_size=self.cfg.algo.logprob_chunk_size, grad_in_logits=True)
        zeros = torch.zeros(mask.shape, dtype=logprobs.dtype, device=logprobs.device)
        return zeros.masked_scatter(mask, logprobs), zeros.masked_scatter(mask, entropy)

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
        return self._logprobs(batch)

    def _logprobs(self, batch: TrainBatch) -> dict[int, list[float]]:
        indices = shard_indices(len(batch), self.dp_rank, self.dp_size)
        mbs = self._micro_batches(batch.select(indices))  # an empty shard still runs the schedule

        def collect(mb, part, output, non_loss_data=True):
            logprobs, _ = self._response_logprobs(part, output, batch.temperature)
            if self.cp_group is not None:
                logprobs = gather_context_parallel(logprobs, self.cp_group)
            return mb.response_values(logprobs)

        with torch.no_grad():
            outputs = self._run(mbs, collect, forward_only=True)
        if not self.reports:
            return {}
        rows = [row for mb_rows in outputs for row in mb_rows]
        return dict(zip(indices, rows))

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
        return self._optimize([batch], SupervisedCrossEntropy())

    def _optimize(self, mini_batches: list[TrainBatch], objective) -> dict:
        records, steps = [], []
        self._computing("training")
        for mini in mini_batches:
            record, step = self._optimizer_step(mini, objective)
            records += record
            steps.append(step)
        return {"records": records if self.reports else [], "steps": steps}

    def _optimizer_step(self, mini: TrainBatch, objective) -> tuple[list, dict]:
        total_units = units(objective.unit, [len(r) for r in mini.response_ids])
        mbs = self._micro_batches(mini.select(shard_indices(len(mini), self.dp_rank, self.dp_size)))
        # the schedule divides each loss by len(mbs), padding included, the same count on every rank
        scale_base = len(mbs) * self.dp_size / total_units

        def loss_of(mb, part, output):
            logprobs, entropy = self._response_logprobs(part, output, mini.temperature)
            loss, metrics = objective.loss(logprobs, entropy, part, self.cp_group)
            scale = scale_base * units(objective.unit, mb.response_lengths)
            metrics = reduce_metrics(metrics, part.num_tokens, self.cp_group, self.device)
            return loss * scale, {"weight": mb.num_tokens, "metrics": metrics}

        for chunk in self.model:
            chunk.zero_grad_buffer()
        self.optimizer.zero_grad()
        records = self._run(mbs, loss_of, forward_only=False)
        _, grad_norm, _ = self.optimizer.step()
        self.scheduler.step(increment=1)
        step = {"grad_norm": float(grad_norm) if grad_norm is not None else float("nan"),
                "lr": float(self.optimizer.param_groups[0]["lr"]), "micro_batches": len(mbs)}
        return [(r["weight"], r["metrics"]) for r in records], step

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
    Ray."""
    import ray

    return my_gpus() if ray.is_initialized() else []


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
