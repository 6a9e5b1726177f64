"""The run's config tree: one dataclass per section, loaded from YAML plus `--set a.b=c` overrides.

Sections owned elsewhere are imported, never redefined here: `model`, `parallel`, `rollout`, `algo`.
The `algo` section is written as a preset plus key-by-key overrides (`algo: {preset: microcoder_grpo,
eps_clip_high: 0.3}`) and resolved through megatron_mc.algo's algo_config_from_section. Three rollout keys
repeat run-level ones and follow them unless set: rollout.group_size (train.n_samples_per_prompt),
rollout.placement (cluster.mode) and rollout.judge_workers (judge.num_workers).

The loader is megatron_mc.typed_config (unknown keys and bad values name the key and the nearest valid
one); this module adds the run's own sections, the override syntax and the resolved-config file.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import yaml

from judge.affinity import check_cpu_choice
from judge.loaders import FORMATS
from megatron_mc.algo import AlgoConfig, algo_config_from_section
from megatron_mc.models.config import ModelConfig
from megatron_mc.parallel.config import ParallelConfig
from megatron_mc.run_state import write_atomic
from megatron_mc.typed_config import ConfigError, from_dict, set_by_path, to_dict
from rollout.config import RolloutConfig

RESOLVED_CONFIG_NAME = "config.yaml"


def _positive(section: str, **values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{section}.{name} must be > 0, got {value!r}")


def _check_format(section: str, fmt: str | None) -> None:
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(f"{section}.format: unknown problem format {fmt!r}; valid: {', '.join(FORMATS)}")


def _non_negative(section: str, **values: float) -> None:
    for name, value in values.items():
        if value < 0:
            raise ValueError(f"{section}.{name} must be >= 0, got {value!r}")


@dataclass
class JudgeConfig:
    num_workers: int = 2
    language: Literal["python", "cpp"] = "python"
    stop_at_first_failure: bool = True  # a reward only needs pass/fail; later tests are skipped
    time_limit_scale: float = 1.0  # multiplies each problem's time limit (slow or contended machines)
    # The CPUs the judge workers are pinned to, one each (judge/affinity.py): a list such as "96-127" (a judge
    # with CPUs of its own on a shared node), null (not pinned), or "auto": those the driver may use when
    # num_workers covers them all, else not pinned.
    cpus: Optional[str] = "auto"

    def __post_init__(self) -> None:
        _positive("judge", num_workers=self.num_workers, time_limit_scale=self.time_limit_scale)
        check_cpu_choice(self.cpus, "judge.cpus")


@dataclass
class DataConfig:
    source: Literal["tiny_tasks", "file"] = "tiny_tasks"
    tiny_family: Literal["default", "long"] = "default"  # tiny_tasks' task family (data/tiny_default.FAMILIES)
    train_problems: str = ""  # a problems file or folder, read with judge.loaders.load_problems(path, format)
    format: Optional[str] = None  # one of judge.loaders.FORMATS; null: normalized problems, told by the path
    max_prompt_tokens: int = 2048

    def __post_init__(self) -> None:
        if self.source == "file" and not self.train_problems:
            raise ValueError("data.train_problems is required when data.source is 'file'; "
                             "set it to a problems file or use data.source: tiny_tasks")
        _check_format("data", self.format)
        _positive("data", max_prompt_tokens=self.max_prompt_tokens)


@dataclass
class AsyncConfig:
    """Generation overlapped with training (disaggregated placement): the rollout of step k+1 (up to k+K)
    runs while step k trains. Every token carries the weight version it was sampled with; a sample whose
    oldest token lags the trained policy by more than K versions is generated again, never trained on."""
    mode: Literal["off", "one_step", "bounded"] = "off"
    max_staleness: int = 1  # K, bounded mode; one_step is K = 1
    # In-flight generations at a weight update come back aborted (SGLang's pause_generation, mode abort):
    # continue: asked again with their prefix, so one response mixes versions (partial rollouts);
    # restart: asked again from the prompt, so every response has one version.
    partial_rollout: Literal["continue", "restart"] = "continue"
    # The per-token correction for off-policy tokens, used as algo.rollout_correction when that is "none".
    correction: Literal["tis", "icepop", "none"] = "tis"

    def __post_init__(self) -> None:
        _positive("train.async", max_staleness=self.max_staleness)
        if self.mode == "one_step" and self.max_staleness != 1:
            raise ValueError(f"train.async.max_staleness is {self.max_staleness} but mode one_step means 1; "
                             "use mode: bounded for more")

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    @property
    def batches_ahead(self) -> int:
        """How many batches the rollout may run ahead of the trainer: 0 when synchronous."""
        return self.max_staleness if self.enabled else 0


@dataclass
class TrainConfig:
    train_batch_size: int = 32  # prompts per RL step
    mini_batch_size: int = 8  # prompts per optimizer step: train_batch_size / mini_batch_size updates
    n_samples_per_prompt: int = 8
    max_steps: int = 100
    lr: float = 1e-6
    min_lr: float = 0.0
    lr_schedule: Literal["constant", "linear", "cosine"] = "constant"
    warmup_steps: int = 0
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    grad_clip: float = 1.0
    # Tokens in one micro-batch of a data-parallel rank (all of its context-parallel ranks together):
    # what activation memory pays for, padding included.
    micro_batch_tokens: int = 16384
    # Sequences back to back in one row (THD: no padding between them, attention within each) instead
    # of right-padded rows; either way every rank runs as many micro-batches with near-equal tokens.
    pack_sequences: bool = True
    # MoE models: per-step expert load, router entropy, aux loss and dropped tokens (moe/* metrics, read
    # once per step with the loss metrics; trainer/moe_diagnostics.py). Dense models have none to report.
    moe_diagnostics: bool = True
    seed: int = 1234
    async_: AsyncConfig = field(default_factory=AsyncConfig, metadata={"key": "async"})

    def __post_init__(self) -> None:
        _positive("train", train_batch_size=self.train_batch_size, mini_batch_size=self.mini_batch_size,
                  n_samples_per_prompt=self.n_samples_per_prompt, max_steps=self.max_steps, lr=self.lr,
                  micro_batch_tokens=self.micro_batch_tokens)
        _non_negative("train", min_lr=self.min_lr, warmup_steps=self.warmup_steps,
                      weight_decay=self.weight_decay, grad_clip=self.grad_clip)
        if self.train_batch_size % self.mini_batch_size:
            raise ValueError(f"train.train_batch_size ({self.train_batch_size}) must be a multiple of "
                             f"train.mini_batch_size ({self.mini_batch_size})")
        if self.min_lr > self.lr:
            raise ValueError(f"train.min_lr ({self.min_lr}) must not exceed train.lr ({self.lr})")

    @property
    def optimizer_steps_per_rl_step(self) -> int:
        return self.train_batch_size // self.mini_batch_size


@dataclass
class EvalConfig:
    interval: int = 0  # RL steps between evaluations; 0 evaluates only before and after training
    problems_file: str = ""  # empty: the held-out split of the data source (tiny_tasks), else required
    format: Optional[str] = None  # as data.format
    n_samples: int = 16
    k: list[int] = field(default_factory=lambda: [1])
    temperature: float = 0.6
    date_from: Optional[str] = None  # contest-date window, ISO dates, from inclusive, to exclusive
    date_to: Optional[str] = None

    def __post_init__(self) -> None:
        _non_negative("eval", interval=self.interval)
        _check_format("eval", self.format)
        _positive("eval", n_samples=self.n_samples)
        for k in self.k:
            if not 1 <= k <= self.n_samples:
                raise ValueError(f"eval.k: {k} must be between 1 and eval.n_samples ({self.n_samples})")
        for name in ("date_from", "date_to"):
            value = getattr(self, name)
            if value is not None:
                try:
                    datetime.date.fromisoformat(value)
                except ValueError:
                    raise ValueError(f"eval.{name}: {value!r} is not an ISO date (YYYY-MM-DD)") from None


@dataclass
class CheckpointConfig:
    dir: Optional[str] = None  # default: RUN_DIR/checkpoints
    interval: int = 50  # RL steps between checkpoints; 0 saves only at the end
    keep_last: int = 3
    hf_export_interval: int = 0  # RL steps between HF exports; 0 exports only at the end
    # The distributed optimizer's state on disk. data_parallel (Megatron-LM's default): every rank writes its
    # own shard, in parallel; resumes under another DP size with the same TP/PP/EP. full: gathered into
    # per-parameter state; resumes under any layout, at a slower save. A checkpoint loads in the format it
    # was saved in, whatever this says then.
    optimizer_resharding: Literal["data_parallel", "full"] = "data_parallel"

    def __post_init__(self) -> None:
        _non_negative("checkpoint", interval=self.interval, hf_export_interval=self.hf_export_interval)
        _positive("checkpoint", keep_last=self.keep_last)


@dataclass
class LoggingConfig:
    jsonl: bool = True
    tensorboard: bool = True  # used when torch.utils.tensorboard imports
    wandb_project: Optional[str] = None  # set to log to Weights & Biases (needs `pip install wandb`)
    wandb_entity: Optional[str] = None
    progress: Literal["auto", "plain", "off"] = "auto"  # auto: a live line on a terminal, else plain lines


@dataclass
class ClusterConfig:
    mode: Literal["colocate", "disaggregate"] = "colocate"
    num_nodes: int = 1
    gpus_per_node: int = 8  # on a CPU machine: train ranks per node
    engine_gpus: int = 0  # disaggregate only: GPUs given to the engines, taken from the last nodes
    ray_address: Optional[str] = None  # None starts a local Ray; "auto" joins the running cluster
    gpu_memory_gib: float = 80.0  # per GPU, for the --dry-run memory plan (H100 80, H20 96, H200 141)
    # Deadlines: a wait that runs out fails naming what is still pending (rank, bundle, node, GPU).
    placement_timeout_s: float = 300.0  # placement groups placed
    train_start_timeout_s: float = 300.0  # every train rank's actor scheduled
    train_setup_timeout_s: float = 900.0  # Megatron initialized and the checkpoint loaded on every rank
    train_call_timeout_s: float = 7200.0  # one collective call: a training step, a weight sync, a checkpoint

    def __post_init__(self) -> None:
        _positive("cluster", num_nodes=self.num_nodes, gpus_per_node=self.gpus_per_node,
                  gpu_memory_gib=self.gpu_memory_gib, placement_timeout_s=self.placement_timeout_s,
                  train_start_timeout_s=self.train_start_timeout_s, train_setup_timeout_s=self.train_setup_timeout_s,
                  train_call_timeout_s=self.train_call_timeout_s)
        total = self.num_nodes * self.gpus_per_node
        if self.mode == "colocate" and self.engine_gpus:
            raise ValueError("cluster.engine_gpus must be 0 in colocate mode (engines share every GPU); "
                             "use cluster.mode: disaggregate to split them")
        if self.mode == "disaggregate" and not 0 < self.engine_gpus < total:
            raise ValueError(f"cluster.engine_gpus must be between 1 and {total - 1} in disaggregate mode "
                             f"({self.num_nodes} nodes x {self.gpus_per_node} GPUs), got {self.engine_gpus}")

    @property
    def total_gpus(self) -> int:
        return self.num_nodes * self.gpus_per_node

    @property
    def train_gpus(self) -> int:
        return self.total_gpus - self.engine_gpus


@dataclass
class RunConfig:
    run_dir: str = "runs/default"
    model: ModelConfig = field(default_factory=ModelConfig)
    parallel: ParallelConfig = field(default_factory=ParallelConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    algo: AlgoConfig = field(default_factory=AlgoConfig)
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)

    @property
    def checkpoint_dir(self) -> Path:
        return Path(self.checkpoint.dir) if self.checkpoint.dir else Path(self.run_dir) / "checkpoints"


def parse_override(item: str) -> tuple[str, Any]:
    """`a.b=c` -> ("a.b", yaml.safe_load("c")), so numbers, booleans, null and lists keep their types."""
    path, sep, text = item.partition("=")
    if not sep or not path.strip():
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set train.lr=1e-6")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {item!r}: the value is not valid YAML ({e})") from None
    return path.strip(), value


def config_from_dict(data: dict[str, Any], overrides: list[str] | tuple[str, ...] = (),
                     where: str = "") -> RunConfig:
    data = copy.deepcopy(data or {})
    for item in overrides:
        path, value = parse_override(item)
        set_by_path(data, path, value, valid=RunConfig)
    try:
        _follow_run_level_keys(data)
        algo_section = data.pop("algo", None)
        if algo_section is not None and not isinstance(algo_section, dict):
            raise ConfigError(f"algo: expected a mapping (preset plus overrides), got {algo_section!r}")
        cfg = dataclasses.replace(from_dict(RunConfig, data), algo=algo_config_from_section(algo_section))
        check_across_sections(cfg)
        cfg = _correct_off_policy_tokens(cfg)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}" if where else str(e)) from None
    return cfg


# rollout keys that repeat a run-level key: they follow it unless set, and must then agree with it (or, with
# a third element, satisfy agrees(set value, lead value))
_FOLLOWERS = {
    ("rollout", "group_size"): (("train", "n_samples_per_prompt"), lambda v: v),
    ("rollout", "placement"): (("cluster", "mode"), lambda v: v + "d"),  # colocate -> colocated
    ("rollout", "judge_workers"): (("judge", "num_workers"), lambda v: v),
    # replay needs the routes; without replay they may still be asked for, for the MoE diagnostics' routing
    # agreement between rollout and train (trainer/moe_diagnostics.py)
    ("rollout", "return_routed_experts"): (("algo", "routing_replay"), lambda v: v,
                                           lambda routes, replay: routes or not replay),
}


def _follow_run_level_keys(data: dict[str, Any]) -> None:
    defaults = RunConfig()
    for (section, key), ((lead_section, lead_key), convert, *agrees) in _FOLLOWERS.items():
        lead = data.get(lead_section) if isinstance(data.get(lead_section), dict) else {}
        lead_value = lead.get(lead_key, getattr(getattr(defaults, lead_section), lead_key))
        follower = data.setdefault(section, {})
        if not isinstance(follower, dict):
            continue  # from_dict reports the bad section
        if key not in follower:
            follower[key] = convert(lead_value)
        elif not (agrees[0](follower[key], lead_value) if agrees else follower[key] == convert(lead_value)):
            raise ConfigError(f"{section}.{key} is {follower[key]!r} but {lead_section}.{lead_key} is {lead_value!r}; "
                              f"set only {lead_section}.{lead_key} ({section}.{key} follows it)")


def check_across_sections(cfg: RunConfig) -> None:
    """Constraints that involve more than one section (each section checks its own values)."""
    try:
        dp = cfg.parallel.dp(cfg.cluster.train_gpus)
    except ValueError as e:
        raise ConfigError(f"parallel: {e} (the train GPUs: cluster.num_nodes * cluster.gpus_per_node - "
                          f"cluster.engine_gpus = {cfg.cluster.train_gpus})") from None
    engine_devices = cfg.rollout.num_engines * cfg.rollout.tp_size
    if cfg.cluster.mode == "disaggregate" and engine_devices != cfg.cluster.engine_gpus:
        raise ConfigError(f"rollout.num_engines * rollout.tp_size = {engine_devices} must equal cluster.engine_gpus "
                          f"= {cfg.cluster.engine_gpus} in disaggregate mode")
    if cfg.cluster.mode == "colocate" and engine_devices > cfg.cluster.total_gpus:
        raise ConfigError(f"rollout.num_engines * rollout.tp_size = {engine_devices} exceeds the "
                          f"{cfg.cluster.total_gpus} GPUs of the cluster (colocated engines share the train GPUs)")
    if cfg.model.rope_scaling != cfg.rollout.rope_scaling:
        raise ConfigError(f"model.rope_scaling {cfg.model.rope_scaling!r} and rollout.rope_scaling "
                          f"{cfg.rollout.rope_scaling!r} differ: the trainer and the engines must place positions the "
                          "same way (set both to the same mapping, or neither)")
    if cfg.train.async_.enabled and cfg.cluster.mode != "disaggregate":
        raise ConfigError(f"train.async.mode {cfg.train.async_.mode!r} needs cluster.mode: disaggregate (colocated "
                          "engines and train ranks take turns on the same GPUs, so there is nothing to overlap); "
                          "set train.async.mode: off or split the GPUs with cluster.engine_gpus")
    samples = cfg.train.mini_batch_size * cfg.train.n_samples_per_prompt
    if samples % dp:
        raise ConfigError(f"train.mini_batch_size * train.n_samples_per_prompt = {samples} samples per optimizer "
                          f"step must be divisible by the data-parallel size {dp}")


def _correct_off_policy_tokens(cfg: RunConfig) -> RunConfig:
    """Asynchronous runs train on tokens of older policies: they get train.async.correction unless
    algo.rollout_correction already names one (the resolved config records which)."""
    if not cfg.train.async_.enabled or cfg.algo.rollout_correction != "none":
        return cfg
    return dataclasses.replace(cfg, algo=dataclasses.replace(cfg.algo, rollout_correction=cfg.train.async_.correction))


def read_yaml_file(path: Path, what: str = "config") -> Any:
    """The file's YAML; a missing file or bad YAML is a ConfigError naming the file."""
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what} file") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    path = Path(path)
    return config_from_dict(read_yaml_file(path) or {}, overrides, where=str(path))


def dump_config(cfg: RunConfig) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def write_resolved_config(cfg: RunConfig, run_dir: str | Path | None = None) -> Path:
    """Write the fully resolved config (every default filled in) as RUN_DIR/config.yaml."""
    target = Path(run_dir or cfg.run_dir) / RESOLVED_CONFIG_NAME
    write_atomic(target, dump_config(cfg))
    return target


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="YAML config file (see examples/configs/)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one key, e.g. --set train.lr=1e-6 (repeatable; values are YAML)")


def config_from_args(args: argparse.Namespace) -> RunConfig:
    return load_config(args.config, args.overrides)
