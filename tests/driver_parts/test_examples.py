"""Every example config loads through the run config and, for the GPU ones, plans within GPU memory."""
from pathlib import Path

import pytest

from megatron_mc.config import load_config
from megatron_mc.planning.memory import GIB
from megatron_mc.planning.plan import make_plan

CONFIGS = Path(__file__).resolve().parents[2] / "examples" / "configs"
GPU_CONFIGS = ["qwen3_4b_microcoder_grpo.yaml", "qwen3_32b_microcoder_grpo.yaml", "qwen3_30b_a3b_moe.yaml"]


def test_every_example_is_listed():
    assert sorted(p.name for p in CONFIGS.glob("*.yaml")) == sorted(GPU_CONFIGS + ["tiny_cpu.yaml", "tiny_long_answers.yaml"])


def test_tiny_cpu_default():
    cfg = load_config(CONFIGS / "tiny_cpu.yaml")
    assert cfg.data.source == "tiny_tasks" and cfg.rollout.engine == "embedded"
    assert cfg.algo.preset == "microcoder_grpo" and cfg.algo.kl_coef == 0.0
    assert cfg.parallel.dp(cfg.cluster.train_gpus) == 2


@pytest.mark.parametrize("name", GPU_CONFIGS)
def test_gpu_examples_plan_within_an_80_gib_gpu(name):
    cfg = load_config(CONFIGS / name)
    assert cfg.rollout.engine == "sglang" and cfg.algo.preset == "microcoder_grpo"
    plan = make_plan(cfg)  # model shapes known by the checkpoint folder's name
    assert plan.peak < cfg.cluster.gpu_memory_gib * GIB
    assert plan.engine_bytes["kv_cache"] > 0
    assert cfg.train.micro_batch_tokens >= cfg.data.max_prompt_tokens + cfg.rollout.max_new_tokens


def test_32b_uses_yarn_for_a_64k_window_in_trainer_and_engines():
    cfg = load_config(CONFIGS / "qwen3_32b_microcoder_grpo.yaml")
    yarn = {"rope_type": "yarn", "factor": 2.0, "original_max_position_embeddings": 32768}
    assert cfg.model.rope_scaling == yarn == cfg.rollout.rope_scaling
    window = yarn["factor"] * yarn["original_max_position_embeddings"]
    assert window == cfg.model.max_position_embeddings == cfg.rollout.context_length == 65536
    assert cfg.data.max_prompt_tokens + cfg.rollout.max_new_tokens <= window
    assert cfg.cluster.mode == "disaggregate" and cfg.parallel.cp == 2 and cfg.parallel.pp == 2
    assert load_config(CONFIGS / "qwen3_30b_a3b_moe.yaml").parallel.ep == 8
