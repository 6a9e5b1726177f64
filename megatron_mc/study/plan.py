"""`mc-study plan`: the study's runs, their run dirs, their state, and the planner's check of each run's
layout and per-GPU memory (what `mc-plan --config` prints, in one line; --verbose prints all of it)."""
from __future__ import annotations

from megatron_mc.config import RunConfig
from megatron_mc.planning.memory import GIB
from megatron_mc.planning.plan import format_plan, make_plan
from megatron_mc.study.runs import StudyRun
from megatron_mc.study.status import run_status
from megatron_mc.study.study_file import Study
from megatron_mc.typed_config import ConfigError


def is_cpu_run(cfg: RunConfig) -> bool:
    """The embedded engine is the CPU stack's; GPU configs generate with SGLang."""
    return cfg.rollout.engine == "embedded"


def memory_check(cfg: RunConfig, verbose: bool = False) -> str:
    if is_cpu_run(cfg):
        return f"CPU run (embedded engine, {cfg.cluster.total_gpus} train ranks): no GPU memory check"
    try:
        plan = make_plan(cfg)
    except (ConfigError, ValueError, FileNotFoundError) as e:
        return f"DOES NOT PLAN: {e}"
    if verbose:
        return format_plan(plan)
    limit = cfg.cluster.gpu_memory_gib
    verdict = "fits" if plan.peak <= limit * GIB and plan.engine_bytes["kv_cache"] > 0 else "DOES NOT FIT"
    return (f"{cfg.cluster.num_nodes} nodes x {cfg.cluster.gpus_per_node} GPUs, {plan.placement.mode}, "
            f"tp={plan.train.tp} pp={plan.train.pp} ep={plan.train.ep} dp={plan.train.dp}; "
            f"peak {plan.peak / GIB:.1f} of {limit:g} GiB per GPU: {verdict}")


def format_study_plan(study: Study, runs: list[StudyRun], verbose: bool = False) -> str:
    kind = study.spec.launcher.kind
    seeds = len({run.seed for run in runs})
    lines = [f"study {study.name}: {len(runs)} runs ({'grid' if study.spec.axes else 'listed points'} x "
             f"{seeds} seed{'s' if seeds > 1 else ''}) from {study.base}, launcher {kind}"
             + (f" via {study.script}" if study.script else ""), f"study folder: {study.out}", ""]
    for run in runs:
        check = memory_check(run.config, verbose)
        lines += [f"{run.name}  [{run_status(run).state}]", f"  {run.label}, seed {run.seed}",
                  f"  run dir: {run.run_dir}"]
        lines += [f"  {line}" for line in check.splitlines()]
    return "\n".join(lines)
