"""A study expanded into its runs: one per point (grid combination or listed point) and seed, each with
its run dir, its config (base + set + point + seed + run_dir, checked by the run config's own loader) and
the config file it is launched with."""
from __future__ import annotations

import copy
import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from megatron_mc.config import RunConfig, config_from_dict
from megatron_mc.planning.cluster_layout import check_cluster_layout
from megatron_mc.run_state import write_atomic
from megatron_mc.study.study_file import Study
from megatron_mc.typed_config import ConfigError, set_by_path

RUN_CONFIG_NAME = "study_config.yaml"  # beside the driver's resolved config.yaml, which it writes itself


@dataclass(frozen=True)
class StudyRun:
    name: str
    point: dict[str, Any]  # the keys that vary across the study (axes or listed points), without the seed
    seed: int
    data: dict[str, Any]  # the config as written: base with every override applied
    config: RunConfig

    @property
    def run_dir(self) -> Path:
        return Path(self.config.run_dir)

    @property
    def config_file(self) -> Path:
        return self.run_dir / RUN_CONFIG_NAME

    @property
    def label(self) -> str:
        """The point without the seed: runs that differ only in their seed share it."""
        return point_label(self.point)

    def write_config(self) -> Path:
        write_atomic(self.config_file, yaml.safe_dump(self.data, sort_keys=False))
        return self.config_file


def point_label(point: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in point.items()) or "base"


def points(study: Study) -> list[dict[str, Any]]:
    spec = study.spec
    if spec.points:
        return [dict(point) for point in spec.points]
    keys = list(spec.axes)
    return [dict(zip(keys, values)) for values in itertools.product(*(spec.axes[k] for k in keys))]


def _check_keys(study: Study) -> None:
    """Every key the study sets names a config key, before any run is built (errors say where it is)."""
    spec = study.spec
    places = [("set", spec.set), ("axes", spec.axes)] + [(f"points[{i}]", p) for i, p in enumerate(spec.points)]
    for where, keys in places:
        for key in keys:
            try:
                set_by_path({}, key, None, valid=RunConfig)
            except ConfigError as e:
                raise ConfigError(f"{study.path}: {where}: {e}") from None
            if key in ("run_dir", "train.seed"):
                raise ConfigError(f"{study.path}: {where}: {key} is set by the study (from out and seeds)")


def _labels(keys: list[str]) -> dict[str, str]:
    """Each key's short name in run names: its last part, unless two keys share it."""
    last = [key.rsplit(".", 1)[-1] for key in keys]
    return {key: short if last.count(short) == 1 else key.replace(".", "-") for key, short in zip(keys, last)}


def run_name(point: dict[str, Any], seed: int, labels: dict[str, str]) -> str:
    parts = [f"{labels[key]}-{value}" for key, value in point.items()] + [f"seed{seed}"]
    return "_".join(re.sub(r"[^A-Za-z0-9.+-]+", "-", part) for part in parts)


def expand(study: Study) -> list[StudyRun]:
    """The study's runs in launch order (points in file order, each point's seeds together)."""
    _check_keys(study)
    try:
        base = yaml.safe_load(study.base.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{study.base}: not valid YAML ({e})") from None
    seeds = study.spec.seeds or [config_from_dict(base, where=str(study.base)).train.seed]
    all_points = points(study)
    labels = _labels(list(dict.fromkeys(key for point in all_points for key in point)))
    runs: dict[str, StudyRun] = {}
    for point, seed in itertools.product(all_points, seeds):
        name = run_name(point, seed, labels)
        if name in runs:
            raise ConfigError(f"{study.path}: two runs are both named {name} ({runs[name].label} and "
                              f"{point_label(point)}); make the values distinct")
        data = copy.deepcopy(base)
        overrides = {**study.spec.set, **point, "train.seed": seed, "run_dir": str(study.out / name)}
        for key, value in overrides.items():
            set_by_path(data, key, value, valid=RunConfig)
        try:
            config = config_from_dict(data)
            check_cluster_layout(config)  # what mc-train refuses before it starts anything
        except ConfigError as e:
            raise ConfigError(f"{study.path}: run {name}: {e}") from None
        runs[name] = StudyRun(name, point, seed, data, config)
    return list(runs.values())
