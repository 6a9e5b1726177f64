"""LiveCodeBench, TACO/APPS and CodeContests rows, and Kattis/ICPC packages, through the judge's loaders."""
from __future__ import annotations

from pathlib import Path

from judge.loaders import load_problems
from judge.problem import ProblemError
from megatron_mc.data.pipeline.collect_sources.base import AdapterResult, record_from_loaded, reject


def rows_adapter(fmt: str):
    def collect(cfg) -> AdapterResult:
        problems = load_problems(_path(cfg), fmt)
        return AdapterResult([record_from_loaded(p, cfg.label) for p in problems[:cfg.limit]])
    return collect


def collect_kattis(cfg) -> AdapterResult:
    """One package folder (it has data/), or a folder whose subfolders are packages. A package the judge
    cannot run (interactive, say) is a rejection with the loader's reason, not the end of the collection."""
    root = _path(cfg)
    folders = [root] if (root / "data").is_dir() else sorted(p for p in root.iterdir() if (p / "data").is_dir())
    if not folders:
        raise ProblemError(f"{root}: neither a Kattis problem package (no data/ folder) nor a folder of packages")
    result = AdapterResult()
    for folder in folders[:cfg.limit]:
        try:
            [problem] = load_problems(folder, "kattis")
        except ProblemError as e:
            reason = "interactive" if "interactive" in str(e) else "unloadable_package"
            result.rejected.append(reject(folder.name, reason, str(e)))
            continue
        result.records.append(record_from_loaded(problem, cfg.label))
    return result


def _path(cfg) -> Path:
    if not cfg.path:
        raise ProblemError(f"collect source {cfg.kind!r} needs a path")
    return Path(cfg.path).expanduser()
