"""Study files written by the tests: the tiny default shrunk as tests/driver/tiny_run.py shrinks it (4
prompts x 4 samples a step, 4 held-out problems), so each run costs a startup and a few seconds."""
from __future__ import annotations

from pathlib import Path

import yaml

from megatron_mc.config import parse_override
from tests.driver.tiny_run import TINY_CONFIG, small_eval_problems

SMALL = ["train.train_batch_size=4", "train.mini_batch_size=2", "train.n_samples_per_prompt=4",
         "train.warmup_steps=0", "eval.n_samples=2", "eval.k=[1, 2]", "rollout.dynamic_sampling=false",
         "logging.progress=plain", "logging.tensorboard=false", "checkpoint.interval=1"]


def small_set(folder: Path, max_steps: int) -> dict:
    overrides = dict(parse_override(item) for item in SMALL)
    return {**overrides, "train.max_steps": max_steps, "eval.problems_file": str(small_eval_problems(folder))}


def write_study(folder: Path, name: str, **fields) -> Path:
    """A study file in `folder` on the tiny default; `fields` are the study's keys (out defaults to folder/name)."""
    study = {"name": name, "base": str(TINY_CONFIG), "out": str(folder / name), **fields}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path
