"""The RL step loop. One step reads like the algorithm:

  the step's rollout batch (temperature, generation, judging: produced by RolloutAhead, synchronously or
  up to train.async batches ahead) -> advantages and masks -> GPUs to the trainer (colocated) -> old
  log-probs (and reference log-probs when the KL term is on) -> optimizer steps (train.train_batch_size /
  train.mini_batch_size of them) -> GPUs back to the engines with the new weights (version = step) ->
  evaluation when due -> metrics -> checkpoint and HF export when due

The trainer's calls run in a thread, so generation ahead (and its judging) goes on while they run.
"""
from __future__ import annotations

import asyncio
import dataclasses

import torch

from megatron_mc.algo import JudgedBatch, compute_sample_advantages
from megatron_mc.driver.checkpointing import due, export_hf, save_checkpoint
from megatron_mc.driver.evaluation import evaluate_policy, headline
from megatron_mc.driver.gpu_time_share import GpuTimeShare
from megatron_mc.driver.problems import ProblemStream
from megatron_mc.driver.rollout_ahead import RolloutAhead
from megatron_mc.driver.signals import StopRequest
from megatron_mc.driver.step_metrics import logprob_diff, pass_rate, prefixed, staleness
from megatron_mc.metrics.logger import MetricsLogger
from megatron_mc.metrics.sinks import numeric_items
from megatron_mc.run_state import RunState
from megatron_mc.trainer.batch import TrainBatch
from rollout.manager import RolloutBatch

NON_INCORRECT = ("AC", "no_code")  # accepted, or no complete program to judge (a response cut off mid-code)


def judged_batch(rollout: RolloutBatch, max_length: int) -> JudgedBatch:
    samples = rollout.samples
    return JudgedBatch(
        rewards=[s.reward or 0.0 for s in samples],
        group_ids=[g for g, group in enumerate(rollout.groups) for _ in group],
        response_lengths=[len(s.response_ids) for s in samples],
        max_length=max_length,
        non_incorrect=[s.verdict.get("verdict") in NON_INCORRECT for s in samples],
        response_token_ids=[s.response_ids for s in samples])


class RLLoop:
    def __init__(self, session, logger: MetricsLogger, stream: ProblemStream, temperature,
                 history: list[dict], stop: StopRequest):
        self.session = session
        self.cfg = session.cfg
        self.logger = logger
        self.stream = stream
        self.temperature = temperature
        self.history = history
        self.stop = stop
        self.share = GpuTimeShare(session)
        self.rollouts = RolloutAhead(session, stream, temperature, self.cfg.train.async_.batches_ahead,
                                     self.cfg.train.max_steps)

    async def run(self, start_step: int) -> int:
        """Train from `start_step` (0: fresh) to train.max_steps or a stop request; returns the last step."""
        last = self.cfg.train.max_steps
        if start_step > 0 or self.share.colocated:
            # resumed: the engines started from the initial model; colocated: their released weights are gone
            self.share.to_engines(start_step)
        if start_step == 0 and self.session.eval_problems:
            with self.logger.timers.phase("eval"):
                before = await evaluate_policy(self.session, 0)
            self.logger.message(f"held-out before training: {headline(before)}")
            self._log(0, before)
        step = start_step
        self.rollouts.start(step + 1)
        try:
            while step < last and not self.stop.requested:
                step += 1
                await self.rl_step(step)
                await self._after_step(step, final=self.stop.requested)
        except BaseException:
            await self.rollouts.stop(raise_failure=False)
            raise
        await self.rollouts.stop()
        return step

    async def rl_step(self, step: int) -> None:
        cfg, group, timers = self.cfg, self.session.group, self.logger.timers
        with timers.phase("engine_check"):
            restarted = await asyncio.to_thread(self.share.readmit_restarted, step - 1)
        with timers.phase("rollout"):  # with async, only what the trainer still waits for
            produced = await self.rollouts.take(step)
        rollout, temperature = produced.rollout, produced.temperature
        with timers.phase("advantages"):
            generator = torch.Generator().manual_seed(cfg.train.seed * 1_000_003 + step)
            advantages = compute_sample_advantages(judged_batch(rollout, cfg.rollout.max_new_tokens), cfg.algo,
                                                   generator)
            # an empty response (the engine stopped at once) has no token to learn from, and an aborted one
            # (the engines kept aborting it) no outcome
            kept = [(s, a) for s, a in zip(rollout.samples, advantages.advantages.tolist())
                    if s.response_ids and s.finish_reason != "abort"]
            samples = [s for s, _ in kept]
            batch = TrainBatch.from_samples(samples, [a for _, a in kept], temperature)
        with timers.phase("to_trainer"):
            await asyncio.to_thread(self.share.to_trainer)
        with timers.phase("old_logprobs"):
            batch = dataclasses.replace(batch, old_logprobs=await asyncio.to_thread(group.compute_logprobs, batch))
        if cfg.algo.needs_reference_model:
            with timers.phase("ref_logprobs"):
                batch = dataclasses.replace(batch, ref_logprobs=await asyncio.to_thread(group.compute_ref_logprobs,
                                                                                        batch))
        with timers.phase("train"):
            train_metrics = await asyncio.to_thread(group.train, batch)
        with timers.phase("weight_sync"):
            await asyncio.to_thread(self.share.to_engines, step)
        metrics = {**rollout.metrics, **prefixed("algo", advantages.metrics()), **prefixed("train", train_metrics),
                   **logprob_diff([s.rollout_logprobs for s in samples], batch.old_logprobs),
                   "rollout/pass_rate": pass_rate(rollout.samples), "rollout/empty_responses": float(
                       sum(not s.response_ids for s in rollout.samples)), "rollout/aborted_samples": float(
                       sum(s.finish_reason == "abort" for s in rollout.samples)), "rollout/temperature": temperature,
                   **staleness(samples, trained_version=step - 1),
                   "weights/version": float(step), "rollout/engines_resynced": float(len(restarted)),
                   "data/epoch": float(produced.epoch),
                   "data/problem_ids": produced.problem_ids}
        if self.session.eval_problems and due(step, cfg.eval.interval, cfg.train.max_steps):
            with timers.phase("eval"):
                metrics.update(await evaluate_policy(self.session, step))
            self.logger.message(f"held-out at step {step}: {headline(metrics)}")
        self._log(step, metrics)

    def _log(self, step: int, metrics: dict) -> None:
        row = self.logger.log_step(step, metrics)
        self.history.append({"step": step, **numeric_items(row)})

    async def _after_step(self, step: int, final: bool) -> None:
        """Checkpoint and HF export when due; `final`: a stop was requested, so both happen now."""
        cfg = self.cfg
        last = cfg.train.max_steps
        checkpoint = final or due(step, cfg.checkpoint.interval, last)
        export = final or due(step, cfg.checkpoint.hf_export_interval, last)
        if not (checkpoint or export):
            return
        if checkpoint:
            # batches generated ahead are dropped and the sampler put back, so the checkpoint resumes into
            # the same problems; generation starts again after it
            await self.rollouts.rewind()
        await asyncio.to_thread(self._save, step, checkpoint, export)
        if checkpoint and not final:
            self.rollouts.start(step + 1)

    def _save(self, step: int, checkpoint: bool, export: bool) -> None:
        cfg = self.cfg
        with self.share.trainer_awake(step):
            if checkpoint:
                folder = save_checkpoint(cfg, self.session.group, RunState(
                    step, self.stream.sampler.state_dict(), self.temperature.state_dict(), list(self.history)))
                self.logger.message(f"checkpoint saved: step {step} -> {folder}")
            if export:
                out = export_hf(cfg, self.session.group, step, self.session.start_model)
                self.logger.message(f"HF checkpoint exported: step {step} -> {out}")
