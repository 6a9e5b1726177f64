"""Where a run's problems and starting model come from, chosen by data.source in one place.

  tiny_tasks  the embedded default: tasks (of family data.tiny_family), tokenizer and tiny Qwen3 built and
              cached by tiny_default.prepare_tiny_default; evaluation on the held-out split unless eval.problems_file
              is set; model.hf_dir, when set, replaces the random-init model (e.g. a warm-started one)
  file        data.train_problems (judge.loaders format data.format) and model.hf_dir, both required;
              mc-data's train.jsonl is such a file (see `with_pipeline_prompt`)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from judge.loaders import load_problems
from judge.problem import Problem
from megatron_mc.config import RunConfig
from megatron_mc.data.tiny_default import prepare_tiny_default


@dataclass(frozen=True)
class RunData:
    train: list[Problem]
    eval: list[Problem]  # empty: no evaluation
    hf_dir: Path  # the model the run starts from


def with_pipeline_prompt(problem: Problem) -> Problem:
    """Puts the prompt of a problem from mc-data's output where the rollout prompt builder reads it.

    mc-data rows keep the statement as the top-level field "statement" and the answer format instruction in
    annotations["format_instruction"] (the judge keeps both in metadata); the prompt builder reads
    metadata["question_content"], set here (in place). Problems that already have question_content, or no
    statement, are unchanged.
    """
    meta = problem.metadata
    statement = meta.get("statement")
    if meta.get("question_content") or not statement:
        return problem
    annotations = meta.get("annotations")
    instruction = annotations.get("format_instruction") if isinstance(annotations, dict) else None
    if instruction and instruction not in statement:
        statement = f"{statement}\n\n{instruction}"
    meta["question_content"] = statement
    return problem


def _load(path: str, fmt: str | None) -> list[Problem]:
    return [with_pipeline_prompt(p) for p in load_problems(path, fmt)]


def _eval_problems(cfg: RunConfig, default: list[Problem]) -> list[Problem]:
    if cfg.eval.problems_file:
        return _load(cfg.eval.problems_file, cfg.eval.format)
    return default


def model_dir(cfg: RunConfig) -> Path:
    """The HF checkpoint the run starts from: model.hf_dir, else the tiny default's for data.source tiny_tasks."""
    if cfg.model.hf_dir:
        return Path(cfg.model.hf_dir)
    if cfg.data.source == "tiny_tasks":
        return prepare_tiny_default(family=cfg.data.tiny_family).hf_dir
    raise ValueError(f"model.hf_dir is required when data.source is {cfg.data.source!r}: "
                     "the HF checkpoint to start from")


def _tiny_tasks(cfg: RunConfig) -> RunData:
    tiny = prepare_tiny_default(family=cfg.data.tiny_family)
    return RunData(train=load_problems(tiny.train_problems),
                   eval=_eval_problems(cfg, load_problems(tiny.held_out_problems)), hf_dir=model_dir(cfg))


def _file(cfg: RunConfig) -> RunData:
    start = model_dir(cfg)  # before reading the (possibly large) problem files
    return RunData(train=_load(cfg.data.train_problems, cfg.data.format), eval=_eval_problems(cfg, []),
                   hf_dir=start)


SOURCES: dict[str, Callable[[RunConfig], RunData]] = {"tiny_tasks": _tiny_tasks, "file": _file}


def load_run_data(cfg: RunConfig) -> RunData:
    return SOURCES[cfg.data.source](cfg)
