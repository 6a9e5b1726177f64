"""Everything a run holds while it trains, started in order and torn down in reverse on any exit.

Ray (started here, or joined: cluster.ray_address), the placement groups (colocated: engines and train
ranks share bundles; disaggregated: disjoint groups), the judge pool, the engine fleet with its router, the
Megatron TrainGroup, the HTTP client and the rollout manager. `open_session` is a context manager: an
exception or Ctrl-C anywhere stops what was started, newest first.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from judge.affinity import worker_cpus
from judge.problem import Problem
from megatron_mc.config import RunConfig
from megatron_mc.data.sources import RunData, load_run_data
from megatron_mc.driver.problems import scale_time_limits
from rollout.client import SGLangClient
from rollout.manager import RolloutManager
from rollout.placement import Placement, make_placement
from rollout.prompts import PromptBuilder
from rollout.rewards import JudgeReward
from rollout.local_ray import init_local_ray


@dataclass
class Session:
    cfg: RunConfig
    start_model: Path  # the HF checkpoint the run started from (tokenizer, HF config for exports)
    train_problems: list[Problem]
    eval_problems: list[Problem]
    placement: Placement
    pool: object  # judge.pool.JudgePool
    fleet: object  # rollout.engine_fleet.EngineFleet
    group: object  # megatron_mc.trainer.group.TrainGroup
    prompts: PromptBuilder
    client: SGLangClient  # its HTTP session lives in the loop's event loop; the loop closes it
    manager: RolloutManager

    @property
    def weight_sync_dir(self) -> Path:
        return Path(self.cfg.rollout.weight_sync_dir or Path(self.cfg.run_dir) / "weights")


def starting_model(cfg: RunConfig, data: RunData) -> Path:
    """model.hf_dir when set; for the tiny default, its SFT-warm-started checkpoint (built once, cached)."""
    if cfg.model.hf_dir or cfg.data.source != "tiny_tasks":
        return data.hf_dir
    from megatron_mc.sft.warm_start import warm_started_tiny_model

    return Path(warm_started_tiny_model(family=cfg.data.tiny_family))


def _start_ray(cfg: RunConfig, stack: contextlib.ExitStack) -> None:
    import ray

    if ray.is_initialized():
        return  # joined by the caller (tests, notebooks): theirs to shut down
    if cfg.cluster.ray_address:
        ray.init(address=cfg.cluster.ray_address, include_dashboard=False, logging_level="WARNING")
    else:
        init_local_ray(logging_level="WARNING")
    stack.callback(ray.shutdown)


def _place(cfg: RunConfig) -> Placement:
    import ray

    resources = ray.cluster_resources()
    use_gpu = resources.get("GPU", 0) > 0
    engine_devices = cfg.rollout.num_engines * cfg.rollout.tp_size
    bundles = cfg.cluster.train_gpus + (engine_devices if cfg.rollout.placement == "disaggregated" else 0)
    # on a CPU machine the bundles stand for GPUs: share the CPUs out so every bundle fits
    cpus_per_bundle = min(1.0, resources.get("CPU", 1) / bundles)
    return make_placement(cfg.rollout.placement, cfg.cluster.train_gpus, engine_devices, cfg.rollout.tp_size,
                          use_gpu, cpus_per_bundle, timeout_s=cfg.cluster.placement_timeout_s)


def rollout_manager(cfg: RunConfig, client: SGLangClient, prompts: PromptBuilder, pool) -> RolloutManager:
    asynchronous = cfg.train.async_
    return RolloutManager(cfg.rollout, client, prompts, JudgeReward(pool, cfg.judge.stop_at_first_failure),
                          continue_partial=asynchronous.enabled and asynchronous.partial_rollout == "continue")


@contextlib.contextmanager
def open_session(cfg: RunConfig) -> Iterator[Session]:
    from transformers import AutoTokenizer

    from judge.pool import JudgePool
    from megatron_mc.trainer.group import TrainGroup
    from rollout.engine_fleet import EngineFleet

    run_dir = Path(cfg.run_dir)
    log_dir = run_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    data = load_run_data(cfg)
    start_model = starting_model(cfg, data)
    judge_cpus = worker_cpus(cfg.judge.cpus, cfg.judge.num_workers, key="judge.cpus")  # refused before Ray starts
    with contextlib.ExitStack() as stack:
        _start_ray(cfg, stack)
        placement = _place(cfg)
        stack.callback(placement.remove)
        pool = stack.enter_context(JudgePool(cfg.judge.num_workers, cpus=judge_cpus))
        fleet = EngineFleet.start(cfg.rollout, str(start_model), log_dir, placement=placement,
                                  use_gpu=cfg.rollout.engine == "sglang", seed=cfg.train.seed)
        stack.callback(fleet.stop)
        if cfg.rollout.placement == "colocated":
            fleet.release_memory()  # the train ranks build on these GPUs; driver/gpu_time_share.py hands them back
        cluster = cfg.cluster
        group = TrainGroup(cfg, str(start_model), placement=placement, start_timeout_s=cluster.train_start_timeout_s,
                           setup_timeout_s=cluster.train_setup_timeout_s, step_timeout_s=cluster.train_call_timeout_s)
        stack.callback(group.shutdown)
        prompts = PromptBuilder(AutoTokenizer.from_pretrained(start_model), cfg.rollout.system_prompt,
                                cfg.rollout.instruction)
        client = SGLangClient(fleet.url, cfg.rollout.max_concurrency, cfg.rollout.request_timeout_s,
                              cfg.rollout.max_retries, cfg.rollout.retry_backoff_s, engine_urls=fleet.engine_urls,
                              return_routed_experts=cfg.rollout.return_routed_experts)
        manager = rollout_manager(cfg, client, prompts, pool)
        scale = cfg.judge.time_limit_scale
        yield Session(cfg, start_model, scale_time_limits(data.train, scale), scale_time_limits(data.eval, scale),
                      placement, pool, fleet, group, prompts, client, manager)
