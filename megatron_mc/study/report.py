"""`mc-study report`: OUT/report/report.md (tables of held-out results, comparisons, cost and MoE
diagnostics, links to the curves and runs), runs.csv (every figure of every run) and curves_*.png."""
from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

from megatron_mc.driver.evaluation import EVAL_DIR
from megatron_mc.run_state import write_atomic
from megatron_mc.study.comparisons import compare
from megatron_mc.study.report_curves import curve_metrics, plot_axis
from megatron_mc.study.report_table import MOE, Aggregate, RunFigures, aggregate, device_hours_name, run_figures
from megatron_mc.study.runs import StudyRun
from megatron_mc.study.status import RunStatus, run_status
from megatron_mc.study.study_file import Study

REPORT_DIR = "report"
PASS_AT = re.compile(r"pass@(\d+)$")
WHEN = ("final", "best")  # the last evaluation and the highest


def _pass_keys(columns: list[str], prefix: str) -> list[str]:
    """The eval/...pass@K keys under `prefix` ("eval/" or "eval/difficulty/D/"), in k order."""
    keys = {c.split(" ", 1)[1] for c in columns if c.startswith("final " + prefix)}
    keys = {k for k in keys if k.removeprefix(prefix).startswith("pass@")}
    return sorted(keys, key=lambda k: int(PASS_AT.search(k).group(1)))


def _cell(agg: Aggregate | None, scale: float = 100.0, digits: int = 1) -> str:
    if agg is None:
        return "-"
    spread = "" if agg.spread is None else f" ± {scale * agg.spread:.{digits}f}"
    return f"{scale * agg.mean:.{digits}f}{spread}"


def _cells(per_point: dict[str, Aggregate], keys: list[tuple[str, str]]) -> list[str]:
    return [_cell(per_point.get(f"{when} {key}")) for _, key in keys for when in WHEN]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def _sections(study: Study, runs: list[StudyRun], table: dict[str, dict[str, Aggregate]], hours: str) -> list[str]:
    columns = list(dict.fromkeys(c for per_point in table.values() for c in per_point))
    overall = _pass_keys(columns, "eval/")
    difficulties = sorted({c.split("/")[2] for c in columns if c.startswith("final eval/difficulty/")})
    seeds = {label: max(agg.n for agg in per_point.values()) for label, per_point in table.items()}
    lines = ["## Held-out results", "", "Percent, mean ± standard deviation over seeds; final: the last "
             "evaluation, best: the highest.", ""]
    keys = [(k.removeprefix("eval/"), k) for k in overall]
    lines += _table(["point", "seeds"] + [f"{when} {name}" for name, _ in keys for when in WHEN],
                    [[label, str(seeds[label])] + _cells(per_point, keys) for label, per_point in table.items()])
    if difficulties:
        keys = [(f"{d} {k.rsplit('/', 1)[1]}", k) for d in difficulties
                for k in _pass_keys(columns, f"eval/difficulty/{d}/")]
        lines += ["", "### By difficulty", ""]
        lines += _table(["point"] + [f"{name.replace(' ', f' {when} ')}" for name, _ in keys for when in WHEN],
                        [[label] + _cells(per_point, keys) for label, per_point in table.items()])
    comparisons = compare(study, runs, table, [f"final {k}" for k in overall])
    if comparisons:
        lines += ["", "## Comparisons", ""] + [f"- {c}" for c in comparisons]
    lines += ["", "## Cost", "", f"Tokens: response tokens trained on. {hours.replace('_', '-')}: the logged "
              "steps' wall time x the run's devices (GPUs; train ranks on CPU).", ""]
    lines += _table(["point", "steps", "tokens", hours.replace("_", "-")],
                    [[label, _cell(p.get("steps"), 1, 0), _cell(p.get("tokens"), 1, 0), _cell(p.get(hours), 1, 3)]
                     for label, p in table.items()])
    moe = sorted({c.split(" ", 1)[1] for c in columns if c.startswith("final ") and MOE.match(c.split(" ", 1)[1])})
    if moe:
        lines += ["", "## MoE diagnostics (last step)", ""]
        lines += _table(["point"] + moe, [[label] + [_cell(p.get(f"final {k}"), 1, 4) for k in moe]
                                          for label, p in table.items()])
    return lines


def _runs_csv(figures: list[RunFigures]) -> str:
    columns = list(dict.fromkeys(c for fig in figures for c in fig.values))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["run", "point", "seed", *columns])
    for fig in figures:
        writer.writerow([fig.run.name, fig.run.label, fig.run.seed, *(fig.values.get(c, "") for c in columns)])
    return out.getvalue()


def _curves(study: Study, figures: list[RunFigures], folder: Path) -> list[Path]:
    if not curve_metrics(figures):
        return []
    if study.spec.points:
        return [plot_axis(figures, None, folder / "curves_points.png", f"{study.name}: listed points")]
    return [plot_axis(figures, axis, folder / f"curves_{re.sub(r'[^A-Za-z0-9.-]+', '-', axis)}.png",
                      f"{study.name}: by {axis}") for axis in study.spec.axes]


def _run_rows(runs: list[StudyRun], statuses: list[RunStatus], folder: Path) -> list[list[str]]:
    rows = []
    for run, status in zip(runs, statuses):
        eval_dir = run.run_dir / EVAL_DIR
        link = f"[eval]({_relative(eval_dir, folder)})" if eval_dir.is_dir() else "-"
        rows.append([run.name, run.label, str(run.seed), status.state,
                     "-" if status.step is None else str(status.step), f"[run]({_relative(run.run_dir, folder)})",
                     link])
    return rows


def _relative(path: Path, folder: Path) -> str:
    return os.path.relpath(path, folder)


def write_report(study: Study, runs: list[StudyRun]) -> Path:
    folder = study.out / REPORT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    hours = device_hours_name(runs)
    figures = [fig for fig in (run_figures(run, hours) for run in runs) if fig is not None]
    if not figures:
        raise FileNotFoundError(f"{study.out}: no run of study {study.name} has logged metrics yet; "
                                f"`mc-study launch {study.path}` first")
    table = aggregate(figures)
    write_atomic(folder / "runs.csv", _runs_csv(figures))
    curves = _curves(study, figures, folder)
    statuses = [run_status(run) for run in runs]
    complete = sum(status.state == "complete" for status in statuses)
    lines = [f"# Study {study.name}", "", f"{len(runs)} runs from `{study.base}` (study file `{study.path}`): "
             f"{complete} complete, {len(figures)} with metrics (an unfinished run counts with what it logged).", ""]
    lines += _sections(study, runs, table, hours)
    lines += ["", "## Learning curves", ""] + [f"![{path.stem}]({path.name})" for path in curves]
    lines += ["", "## Runs", "", "Every figure of every run: [runs.csv](runs.csv).", ""]
    lines += _table(["run", "point", "seed", "state", "step", "run dir", "held-out reports"],
                    _run_rows(runs, statuses, folder))
    path = folder / "report.md"
    write_atomic(path, "\n".join(lines) + "\n")
    return path
