"""`mc-eval --model HF_DIR_OR_RUN --problems FILE [--n 16] [--k 1,4,16] [--window v6 | --date-from --date-to]
[--time-limit-scale X] [--out report.json]`: LiveCodeBench-style evaluation through the project's engines
and judge.

Engines: the embedded engine on a CPU machine, SGLang where CUDA is available (or --engine); with
--config, the run config's rollout section (engine, tp_size, num_engines, max_new_tokens, prompts) is used,
and its judge section: time_limit_scale (as mc-train applies it; --time-limit-scale overrides it),
cpus (--judge-cpus overrides it) and stop_at_first_failure.
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

from judge.loaders import FORMATS, load_problems
from judge.problem import Problem
from megatron_mc.config import JudgeConfig, RunConfig, load_config
from megatron_mc.driver.problems import scale_time_limits
from megatron_mc.eval.evaluate import eval_rollout_config, evaluate
from megatron_mc.eval.report import format_table
from megatron_mc.eval.windows import NAMED_WINDOWS, resolve_window
from megatron_mc.run_state import latest_hf_export, write_atomic
from rollout.config import RolloutConfig
from rollout.local_ray import init_local_ray


def resolve_model(path: str) -> Path:
    """An HF checkpoint folder, or a run directory whose newest complete HF export is used."""
    folder = Path(path).expanduser()
    if (folder / "config.json").is_file():
        return folder
    if folder.is_dir():
        export = latest_hf_export(folder)
        if export is not None:
            return export
        raise FileNotFoundError(f"--model {path}: neither an HF checkpoint (no config.json) nor a run directory "
                                "with a complete HF export under hf/step_*/")
    raise FileNotFoundError(f"--model {path}: no such folder")


def parse_ks(text: str) -> list[int]:
    try:
        ks = sorted({int(k) for k in text.split(",") if k.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"--k {text!r}: expected integers separated by commas, e.g. 1,4,16") from None
    if not ks or ks[0] < 1:
        raise argparse.ArgumentTypeError(f"--k {text!r}: every k must be >= 1")
    return ks


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mc-eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="HF checkpoint folder or run directory")
    parser.add_argument("--problems", required=True, help="problems file or folder (judge.loaders formats)")
    parser.add_argument("--format", choices=FORMATS, help="problem format; default: normalized, told by the path")
    parser.add_argument("--n", type=int, default=16, help="samples per problem (default 16)")
    parser.add_argument("--k", type=parse_ks, default=[1], help="pass@k values, e.g. 1,4,16 (default 1)")
    parser.add_argument("--window", choices=sorted(NAMED_WINDOWS), help="a LiveCodeBench contest-date window")
    parser.add_argument("--date-from", help="first contest date (YYYY-MM-DD, inclusive)")
    parser.add_argument("--date-to", help="last contest date (YYYY-MM-DD, exclusive)")
    parser.add_argument("--temperature", type=float, default=0.6)
    parser.add_argument("--max-new-tokens", type=int, help="default: the rollout config's")
    parser.add_argument("--config", help="a run config whose rollout section sets the engines and prompts")
    parser.add_argument("--engine", choices=["embedded", "sglang"], help="default: sglang with CUDA, else embedded")
    parser.add_argument("--tp", type=int, help="engine tensor-parallel size")
    parser.add_argument("--num-engines", type=int)
    parser.add_argument("--judge-workers", type=int, help="default: one per CPU core")
    parser.add_argument("--judge-cpus", help="CPUs the judge workers are pinned to: a list such as '0-7', 'none', "
                                             "or 'auto' (default: the --config's judge.cpus, else auto)")
    parser.add_argument("--time-limit-scale", type=float,
                        help="multiplies every problem's time limit (default: the --config's judge.time_limit_scale, "
                             "else 1)")
    parser.add_argument("--out", help="write the report as JSON here")
    parser.add_argument("--log-dir", help="engine and router logs (default: a temporary folder)")
    return parser


def _rollout_config(args: argparse.Namespace, cfg: RunConfig | None) -> RolloutConfig:
    if cfg is not None:
        rollout = cfg.rollout
    else:
        import torch

        rollout = RolloutConfig(engine="sglang" if torch.cuda.is_available() else "embedded")
    changes = {name: value for name, value in (("engine", args.engine), ("tp_size", args.tp),
                                               ("num_engines", args.num_engines),
                                               ("max_new_tokens", args.max_new_tokens)) if value is not None}
    return eval_rollout_config(dataclasses.replace(rollout, **changes), args.n, args.temperature)


def run_config(args: argparse.Namespace) -> RunConfig | None:
    return load_config(args.config) if args.config else None


def judge_config(args: argparse.Namespace, cfg: RunConfig | None) -> JudgeConfig:
    judge = cfg.judge if cfg is not None else JudgeConfig()
    if args.time_limit_scale is not None:
        judge = dataclasses.replace(judge, time_limit_scale=args.time_limit_scale)  # validated like the config
    if args.judge_cpus is not None:
        judge = dataclasses.replace(judge, cpus=args.judge_cpus)
    return judge


def eval_problems(args: argparse.Namespace, judge: JudgeConfig) -> list[Problem]:
    """The problems file's problems with their time limits scaled as the judge config says."""
    return scale_time_limits(load_problems(args.problems, args.format), judge.time_limit_scale)


def run_eval(args: argparse.Namespace) -> dict:
    import ray
    from transformers import AutoTokenizer

    from judge.affinity import worker_cpus
    from judge.pool import JudgePool, default_workers
    from rollout.client import SGLangClient
    from rollout.engine_fleet import EngineFleet
    from rollout.placement import make_placement
    from rollout.prompts import PromptBuilder

    model = resolve_model(args.model)
    date_from, date_to = resolve_window(args.window, args.date_from, args.date_to)
    cfg = run_config(args)
    judge = judge_config(args, cfg)
    judge_cpus = worker_cpus(judge.cpus, args.judge_workers or default_workers(), key="judge.cpus")  # before engines
    problems = eval_problems(args, judge)
    rollout = _rollout_config(args, cfg)
    use_gpu = rollout.engine == "sglang"
    log_dir = Path(args.log_dir or tempfile.mkdtemp(prefix="mc-eval-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    started_ray = not ray.is_initialized()
    if started_ray:
        init_local_ray()
    fleet = placement = None
    try:
        devices = rollout.num_engines * rollout.tp_size
        placement = make_placement("colocated", devices, devices, rollout.tp_size, use_gpu) if use_gpu else None
        fleet = EngineFleet.start(rollout, str(model), log_dir, placement=placement, use_gpu=use_gpu)
        prompts = PromptBuilder(AutoTokenizer.from_pretrained(model), rollout.system_prompt, rollout.instruction)
        with JudgePool(args.judge_workers, cpus=judge_cpus) as pool:
            async def _run() -> dict:
                async with SGLangClient(fleet.url, rollout.max_concurrency, rollout.request_timeout_s,
                                        engine_urls=fleet.engine_urls) as client:
                    return await evaluate(problems, client, prompts, pool, rollout, args.k, date_from, date_to,
                                          judge.stop_at_first_failure)

            report = asyncio.run(_run())
    finally:
        if fleet is not None:
            fleet.stop()
        if placement is not None:
            placement.remove()
        if started_ray:
            ray.shutdown()
    report["model"] = str(model)
    report["n_samples"] = args.n
    return report


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.n < max(args.k):
        print(f"mc-eval: --n {args.n} is smaller than the largest k ({max(args.k)})", file=sys.stderr)
        return 2
    try:
        report = run_eval(args)
    except (FileNotFoundError, ValueError) as e:
        print(f"mc-eval: {e}", file=sys.stderr)
        return 2
    print(format_table(report))
    if args.out:
        write_atomic(args.out, json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
