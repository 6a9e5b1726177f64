"""Evaluate a policy on problems: n samples each through the rollout engines, judged by the judge pool.

The same code serves the driver (its running engines, every eval.interval steps) and `mc-eval` (engines
it starts itself). Generation goes through rollout's RolloutManager with group size n and no dynamic
sampling, so evaluation sees exactly the prompts, sampling and reward path of training.
"""
from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from typing import Any

from judge.problem import Problem
from megatron_mc.eval.report import ProblemResult, build_report
from megatron_mc.eval.windows import in_window
from rollout.client import SGLangClient
from rollout.config import RolloutConfig
from rollout.manager import RolloutManager
from rollout.prompts import PromptBuilder
from rollout.rewards import JudgeReward

ACCEPTED = "AC"


def select_problems(problems: list[Problem], date_from: str | None, date_to: str | None) -> list[Problem]:
    return [p for p in problems if in_window(p.metadata, date_from, date_to)]


def eval_rollout_config(rollout: RolloutConfig, n_samples: int, temperature: float) -> RolloutConfig:
    """The run's rollout settings with group size n, the eval temperature and no dynamic sampling."""
    return dataclasses.replace(rollout, group_size=n_samples, temperature=temperature, dynamic_sampling=False,
                               target_diversity=None)


async def evaluate(problems: list[Problem], client: SGLangClient, prompts: PromptBuilder, pool: Any,
                   rollout: RolloutConfig, ks: list[int], date_from: str | None = None,
                   date_to: str | None = None, stop_at_first_failure: bool = True) -> dict[str, Any]:
    """The report (see report.build_report) of the problems in the date window; stop_at_first_failure as
    judge.stop_at_first_failure (pass@k needs only pass/fail; False runs every test of every sample)."""
    chosen = select_problems(problems, date_from, date_to)
    if not chosen:
        raise ValueError(f"no problem has a contest date in [{date_from}, {date_to}); "
                         f"{len(problems)} problems were given")
    manager = RolloutManager(rollout, client, prompts, JudgeReward(pool, stop_at_first_failure))
    groups = await asyncio.gather(*(manager.generate_group(p, rollout.temperature) for p in chosen))
    results = []
    for problem, group in zip(chosen, groups):
        verdicts = Counter(s.verdict.get("verdict", "unjudged") for s in group)
        results.append(ProblemResult(problem.id, len(group), verdicts.get(ACCEPTED, 0), problem.metadata,
                                     dict(verdicts)))
    return build_report(results, ks, {"date_from": date_from, "date_to": date_to})


def eval_metrics(report: dict[str, Any], prefix: str = "eval") -> dict[str, float]:
    """The report's headline figures as flat metrics for the MetricsLogger."""
    metrics = {f"{prefix}/{name}": value for name, value in report["overall"].items()}
    for key in ("difficulty", "platform"):
        for group, values in report[f"by_{key}"].items():
            metrics.update({f"{prefix}/{key}/{group}/{name}": v for name, v in values.items() if name != "num_problems"})
    return metrics
