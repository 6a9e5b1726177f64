"""`mc-study status`: one line per run: state, step of max, last held-out figures, reason."""
from __future__ import annotations

from collections import Counter

from megatron_mc.study.runs import StudyRun
from megatron_mc.study.status import run_status


def format_status(runs: list[StudyRun]) -> str:
    width = max(len(run.name) for run in runs)
    lines = [f"{'run':<{width}}  {'state':<11}  {'step':>9}  held-out"]
    states: Counter[str] = Counter()
    for run in runs:
        status = run_status(run)
        states[status.state] += 1
        step = f"{'-' if status.step is None else status.step}/{run.config.train.max_steps}"
        held_out = " ".join(f"{key.removeprefix('eval/')} {100 * value:.1f}%"
                            for key, value in status.held_out.items()) or "-"
        lines.append(f"{run.name:<{width}}  {status.state:<11}  {step:>9}  {held_out}"
                     + (f"  ({status.reason})" if status.reason else ""))
    lines.append(", ".join(f"{count} {state}" for state, count in states.items()))
    return "\n".join(lines)
