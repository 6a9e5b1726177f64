"""build_optimizer gives every param group its learning-rate bounds (max_lr = lr, min_lr as asked), so
Megatron-Core's scheduler decays linearly or by cosine to train.min_lr. Megatron-Core on CPU changes
process-global torch state, so the optimizer is built in a fresh one-rank gloo process."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rollout.process import free_port

REPO = Path(__file__).resolve().parents[2]

WORKER = """
import json, sys
from megatron_mc.config import TrainConfig
from megatron_mc.data.tiny_default import prepare_tiny_default
from megatron_mc.models.build import build_model, load_adapter
from megatron_mc.models.config import ModelConfig
from megatron_mc.parallel import state
from megatron_mc.parallel.config import ParallelConfig
from megatron_mc.parallel.training import build_optimizer, wrap_ddp
from megatron_mc.trainer.lr_schedule import make_lr_scheduler

par = ParallelConfig()
state.initialize(par)
cfg = ModelConfig(hf_dir=prepare_tiny_default().hf_dir)
model = wrap_ddp(build_model(cfg, par, load_adapter(cfg)), par)
optimizer = build_optimizer(model, par, lr=1e-3, min_lr=1e-4)
bounds = [[g["max_lr"], g["min_lr"]] for g in optimizer.param_groups]
lrs = {}
for style in ("linear", "cosine"):
    train = TrainConfig(lr=1e-3, min_lr=1e-4, lr_schedule=style, warmup_steps=1)
    scheduler = make_lr_scheduler(optimizer, train, total_optimizer_steps=5)
    lrs[style] = []
    for _ in range(6):
        lrs[style].append(optimizer.param_groups[0]["lr"])
        scheduler.step(1)
print(json.dumps({"bounds": bounds, "lrs": lrs}))
"""


@pytest.fixture(scope="module")
def measured():
    env = dict(os.environ, RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()),
               CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", WORKER], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_param_group_gets_its_lr_bounds(measured):
    assert measured["bounds"] and all(b == [1e-3, 1e-4] for b in measured["bounds"])


@pytest.mark.parametrize("style", ["linear", "cosine"])
def test_decaying_schedules_warm_up_then_end_at_min_lr(measured, style):
    lrs = measured["lrs"][style]
    assert lrs[1] == pytest.approx(1e-3)
    assert all(a > b for a, b in zip(lrs[1:5], lrs[2:6]))
    assert lrs[5] == pytest.approx(1e-4)
