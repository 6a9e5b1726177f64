"""The study file: a controlled set of RL runs that differ in a few config keys, for `mc-study`.

    name: tiny_algorithms                  # default: the file's name without .yaml
    base: ../configs/tiny_cpu.yaml         # the run config every run starts from; relative to this file
    out: runs/studies/tiny_algorithms      # the study folder (relative to the working directory, like a
                                           # config's run_dir); each run's dir is OUT/<run>, named from
                                           # its axis values and seed (preset-dapo_seed1); mc-study report
                                           # writes OUT/report/
    set: {train.max_steps: 8, eval.interval: 4}   # overrides for every run: the same dotted keys as --set
    axes:                                  # a grid: every combination of the listed values ...
      algo.preset: [grpo, dapo, microcoder_grpo]
      rollout.temperature: [1.0, 1.2]
    points:                                # ... or listed points instead (not both): one mapping a run
      - {algo.preset: grpo}
      - {algo.preset: microcoder_grpo, rollout.temperature: 1.2}
    seeds: [1, 2]                          # each point runs once per seed (written to train.seed);
                                           # default: one run with the base config's own train.seed
    launcher: {kind: local}                # the default: one run after another on this machine
    # launcher:                            # or one Slurm job per run, through a launch script that reads
    #   kind: slurm                        # CONFIG and RUN_DIR from its environment (examples/run_grpo_32b.sh)
    #   script: ../run_grpo_32b.sh         # relative to this file
    #   array: true                        # one job array for the runs to launch ...
    #   max_concurrent: 4                  # ... at most this many at once (--array=0-N%4)
    #   sbatch_args: [--partition=gpu, --time=48:00:00]
    #   env: {MODEL_DIR: /models/Qwen3-30B-A3B}   # added to the jobs' environment

Keys are checked when the file is read (unknown ones name the nearest valid key); every run's config
(base + set + point + seed + run_dir) then goes through the run config's own loader before anything
starts, so an axis key that is not a config key, or a value the config rejects, fails naming the run.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

from megatron_mc.config import read_yaml_file
from megatron_mc.typed_config import ConfigError, from_dict


@dataclass
class LauncherConfig:
    kind: Literal["local", "slurm"] = "local"
    script: Optional[str] = None  # slurm: the launch script, relative to the study file
    array: bool = False
    max_concurrent: Optional[int] = None  # array only: the %N concurrency limit
    sbatch_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind == "slurm" and not self.script:
            raise ValueError("launcher.script is required for kind slurm (e.g. ../run_grpo_32b.sh)")
        if self.kind == "local" and (self.script or self.array or self.max_concurrent or self.sbatch_args):
            raise ValueError("launcher.script, array, max_concurrent and sbatch_args apply to kind slurm only")
        if self.max_concurrent is not None and (not self.array or self.max_concurrent < 1):
            raise ValueError("launcher.max_concurrent must be >= 1 and needs launcher.array: true")


@dataclass
class StudyFile:
    base: str
    out: str
    name: str = ""
    set: dict[str, Any] = field(default_factory=dict)
    axes: dict[str, list[Any]] = field(default_factory=dict)
    points: list[dict[str, Any]] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    launcher: LauncherConfig = field(default_factory=LauncherConfig)

    def __post_init__(self) -> None:
        if self.axes and self.points:
            raise ValueError("give either axes (a grid) or points (listed runs), not both")
        for key, values in self.axes.items():
            if not values:
                raise ValueError(f"axes.{key}: needs at least one value")
        for i, point in enumerate(self.points):
            if not point:
                raise ValueError(f"points[{i}]: an empty point; give at least one key: value")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds: {self.seeds} repeats a seed")


@dataclass
class Study:
    """A study file read and its paths resolved: `base` and the launch script against the file's folder."""
    path: Path
    spec: StudyFile
    base: Path
    out: Path
    script: Optional[Path]

    @property
    def name(self) -> str:
        return self.spec.name or self.path.stem


def load_study(path: str | Path) -> Study:
    path = Path(path)
    data = read_yaml_file(path, "study")
    missing = [key for key in ("base", "out") if not isinstance(data, dict) or key not in data]
    if missing:
        raise ConfigError(f"{path}: missing key {missing[0]!r} (a study needs base: CONFIG and out: FOLDER)")
    try:
        spec = from_dict(StudyFile, data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    base = (path.parent / spec.base).resolve()
    if not base.is_file():
        raise ConfigError(f"{path}: base: {base} is not a file (paths are relative to the study file)")
    script = (path.parent / spec.launcher.script).resolve() if spec.launcher.script else None
    if script is not None and not script.is_file():
        raise ConfigError(f"{path}: launcher.script: {script} is not a file (relative to the study file)")
    return Study(path, spec, base, Path(spec.out).resolve(), script)
