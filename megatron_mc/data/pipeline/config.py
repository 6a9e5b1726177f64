"""data.yaml: the pipeline's typed config (one section per stage, plus the run's folder, workers and engine).

    out_dir: runs/data          # the run folder: manifest.json, train.jsonl, one folder per stage
    workers: 2                  # judge workers (and other parallel work)
    cpus: auto                  # the CPUs judge workers are pinned to (judge/affinity.py): auto, none, "0-7"
    engine: {url: null, embedded: true, model_path: null}
    collect: {sources: [{kind: livecodebench, path: test6.jsonl}, ...]}
    process: {...}   filter: {...}   verify: {...}

Unknown keys are errors naming the key (megatron_mc.typed_config); `--set a.b=c` overrides a key.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from judge.affinity import check_cpu_choice
from megatron_mc.data.pipeline.collect import CollectConfig
from megatron_mc.data.pipeline.filter import FilterConfig
from megatron_mc.data.pipeline.process import ProcessConfig
from megatron_mc.data.pipeline.verify import VerifyConfig
from megatron_mc.typed_config import ConfigError, from_dict, set_by_path, to_dict


@dataclass
class EngineConfig:
    """The LLM endpoint of the filter stage (difficulty predictor and reference policy)."""

    url: str | None = None          # an OpenAI-compatible base URL (SGLang, ...); set: used as it is
    embedded: bool = True           # no url: start the embedded engine on loopback when a stage needs one
    model_path: str | None = None   # the embedded engine's HF model folder; None: the tiny default's model
    startup_timeout_s: float = 300.0
    threads: int = 2

    def __post_init__(self) -> None:
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"engine.url must start with http:// or https://, got {self.url!r}")


@dataclass
class PipelineConfig:
    out_dir: str = "runs/data"
    workers: int = 2
    cpus: Optional[str] = "auto"  # judge/affinity.py: "auto", a list such as "0-7", or null/"none"
    engine: EngineConfig = field(default_factory=EngineConfig)
    collect: CollectConfig = field(default_factory=CollectConfig)
    process: ProcessConfig = field(default_factory=ProcessConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        check_cpu_choice(self.cpus, "cpus")


def config_from_dict(data: dict[str, Any] | None, overrides: list[str] | tuple[str, ...] = (),
                     where: str = "") -> PipelineConfig:
    data = copy.deepcopy(data or {})
    try:
        if overrides:
            from megatron_mc.config import parse_override  # the run config's --set syntax (imports torch)
        for item in overrides:
            path, value = parse_override(item)
            set_by_path(data, path, value, valid=PipelineConfig)
        return from_dict(PipelineConfig, data)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}" if where else str(e)) from None


# The embedded default differs from the keys' defaults (sized for real models) only where the tiny default's
# model makes them wasteful: it was trained to answer in 64 tokens and cannot follow the predictor's
# prompt, so long answers cost minutes on 2 cores and say nothing more (examples/data/default.yaml).
EMBEDDED_DEFAULT: dict[str, Any] = {
    "filter": {"difficulty": {"llm": {"samples": 2, "max_tokens": 48},
                              "pass_rates": {"max_new_tokens": 64}}},
}


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> PipelineConfig:
    """The config in YAML file `path` (None: the embedded default) with `--set` overrides applied."""
    if path is None:
        return config_from_dict(copy.deepcopy(EMBEDDED_DEFAULT), overrides)
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
    return config_from_dict(data, overrides, where=str(path))


def section_dict(cfg: PipelineConfig, section: str) -> dict[str, Any]:
    return to_dict(getattr(cfg, section))
