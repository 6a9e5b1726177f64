"""The rehearsal of each shipped GPU config keeps its shape: placement mode, parallel layout, weight-sync
transport and router stay; only data parallelism shrinks (as far as the layout allows: whole nodes, and
colocated, every engine GPU shared); the tiny model is of the config's family and splittable by it."""
from pathlib import Path

import pytest

from megatron_mc.config import load_config
from megatron_mc.rehearsal.layout import model_family, rehearsal_config, rehearsal_world_size, tiny_model_overrides

REPO = Path(__file__).resolve().parents[2]
# the GPU configs: those whose engines are SGLang (the CPU configs run the embedded engine)
GPU_CONFIGS = sorted(p for p in (REPO / "examples" / "configs").glob("*.yaml")
                     if load_config(p).rollout.engine == "sglang")

EXPECTED = {  # config -> (family, train ranks in the rehearsal, simulated nodes)
    "qwen3_4b_microcoder_grpo": ("qwen3", 8, 1),
    "qwen3_30b_a3b_moe": ("qwen3_moe", 16, 2),
    "qwen3_32b_microcoder_grpo": ("qwen3", 16, 4),
}


def test_every_gpu_config_is_covered():
    assert {p.stem for p in GPU_CONFIGS} == set(EXPECTED)


@pytest.mark.parametrize("path", GPU_CONFIGS, ids=lambda p: p.stem)
def test_rehearsal_keeps_the_shape(path, tmp_path):
    cfg = load_config(path)
    family, world, nodes = EXPECTED[path.stem]
    assert model_family(cfg) == family
    assert rehearsal_world_size(cfg) == world
    r = rehearsal_config(cfg, tmp_path / "run", tmp_path / "model", tmp_path / "eval.jsonl", "127.0.0.2:6379")
    for key in ("tp", "pp", "vpp", "cp", "ep", "etp", "sequence_parallel", "distributed_optimizer",
                "overlap_grad_reduce", "overlap_param_gather"):
        assert getattr(r.parallel, key) == getattr(cfg.parallel, key), key
    assert r.cluster.mode == cfg.cluster.mode and r.rollout.placement == cfg.rollout.placement
    assert r.cluster.gpus_per_node == cfg.cluster.gpus_per_node and r.cluster.num_nodes == nodes
    assert r.cluster.engine_gpus == cfg.cluster.engine_gpus
    assert (r.rollout.num_engines, r.rollout.tp_size) == (cfg.rollout.num_engines, cfg.rollout.tp_size)
    assert (r.rollout.weight_sync, r.rollout.router) == (cfg.rollout.weight_sync, cfg.rollout.router)
    assert r.rollout.engine == "embedded" and r.rollout.embedded_strict
    assert r.model.rope_scaling == cfg.model.rope_scaling
    assert r.cluster.ray_address == "127.0.0.2:6379"
    assert r.parallel.dp(r.cluster.train_gpus) * cfg.parallel.tp * cfg.parallel.pp * cfg.parallel.cp == world


@pytest.mark.parametrize("path", GPU_CONFIGS, ids=lambda p: p.stem)
def test_tiny_model_splits_under_the_layout(path):
    cfg = load_config(path)
    fields = tiny_model_overrides(cfg)
    cfg.parallel.check_model(fields["num_hidden_layers"], fields["num_attention_heads"],
                             fields["num_key_value_heads"], fields.get("num_experts", 0))
