"""The dry-run plan against hand-computed figures for a small model on 8 GPUs; the cluster layouts refused
before a run starts (engines wider than a node, CUDA IPC weight sync across nodes or pipeline stages), and
the shipped GPU configs passing those checks with Transformer Engine required."""
import json
from pathlib import Path

import pytest

from megatron_mc.config import config_from_dict, load_config
from megatron_mc.data.tiny_default import CACHE_ENV
from megatron_mc.models.layer_spec import choose_impl, transformer_engine_available
from megatron_mc.planning.cli import main
from megatron_mc.planning.cluster_layout import check_cluster_layout
from megatron_mc.planning.memory import GIB, kv_bytes_per_token, layer_params, total_params
from megatron_mc.planning.model_shape import ModelShape, load_model_shape
from megatron_mc.planning.plan import format_plan, make_plan
from megatron_mc.planning.placement import place
from megatron_mc.typed_config import ConfigError

SMALL = ModelShape(hidden_size=64, num_layers=4, num_heads=4, num_kv_heads=2, head_dim=16, ffn_hidden_size=128,
                   vocab_size=1000, tie_word_embeddings=False)
# one layer: q 64*64 + k,v 2*64*32 + o 64*64 = 12288; norms 2*64 + q/k norms 2*16 = 160; SwiGLU 3*64*128 = 24576
LAYER = 12288 + 160 + 24576


def _cfg(**sections):
    base = {"cluster": {"num_nodes": 2, "gpus_per_node": 4, "gpu_memory_gib": 0.01},
            "parallel": {"tp": 2, "pp": 2, "distributed_optimizer": True},
            "train": {"train_batch_size": 16, "mini_batch_size": 8, "n_samples_per_prompt": 4,
                      "micro_batch_tokens": 1024},
            "rollout": {"num_engines": 4, "tp_size": 2, "max_new_tokens": 256, "mem_fraction_static": 0.5},
            "data": {"max_prompt_tokens": 256}, "model": {"dtype": "bfloat16"}}
    for name, values in sections.items():
        base[name] = {**base.get(name, {}), **values}
    return config_from_dict(base)


def test_parameter_counts():
    assert layer_params(SMALL) == (LAYER, 0)
    assert total_params(SMALL) == 4 * LAYER + 2 * 1000 * 64 + 64


def test_colocated_memory_by_hand():
    plan = make_plan(_cfg(), SMALL)
    assert plan.train.dp == 2
    params = 2 * LAYER / 2 + 1000 * 64 / 2 + 64  # 2 layers / tp, one vocab matrix / tp, final norm
    assert plan.train_bytes == pytest.approx({
        "weights": params * 2,
        "grads": params * 4,
        "optimizer": params * 12 / 2,  # master + 2 moments, over dp=2
        "activations": 1024 * 64 * (10 + 24 / 2) * 4,
        "logits": 1024 * 1000 / 2 * 2,  # bf16, the gradient written in place
    })
    assert kv_bytes_per_token(SMALL, 2) == 2 * 4 * 1 * 16 * 2  # one of the 2 kv heads per GPU
    weights = total_params(SMALL) * 2 / 2
    pool = 0.5 * 0.01 * GIB - weights
    assert plan.engine_bytes == pytest.approx({"weights": weights, "kv_cache": pool})
    assert plan.peak == pytest.approx(plan.train_total)  # 10.2 MiB of training > 1.6 MiB resident + 5.1 MiB engine
    table = format_plan(plan)
    # 512-token sequences at 256 bytes per token per GPU, over 2 GPUs
    assert f"each engine holds {int(pool * 2 // (512 * 256 * 2))} sequences of 512 tokens at once; " \
           "a step sends it 16" in table
    assert "WARNING" not in table
    assert "WARNING: the peak exceeds" in format_plan(make_plan(_cfg(cluster={"gpu_memory_gib": 0.005}), SMALL))


def test_recompute_sequence_parallel_and_plain_optimizer():
    full = make_plan(_cfg(model={"recompute": "full"}), SMALL)
    assert full.train_bytes["activations"] == pytest.approx(1024 * 64 * 2 * 4 + 1024 * 64 * 22)
    sp = make_plan(_cfg(parallel={"sequence_parallel": True}), SMALL)
    assert sp.train_bytes["activations"] == pytest.approx(1024 * 64 * 17 * 4)
    plain = make_plan(_cfg(parallel={"distributed_optimizer": False}, model={"dtype": "float32"}), SMALL)
    params = 2 * LAYER / 2 + 1000 * 64 / 2 + 64
    assert plain.train_bytes["optimizer"] == pytest.approx(params * 8)
    assert plain.train_bytes["weights"] == pytest.approx(params * 4)


def test_disaggregated_placement_and_table():
    cfg = _cfg(cluster={"mode": "disaggregate", "engine_gpus": 4}, parallel={"tp": 2, "pp": 1},
               rollout={"num_engines": 2, "tp_size": 2})
    plan = make_plan(cfg, SMALL)
    assert plan.placement.train_gpus == [0, 1, 2, 3] and plan.placement.engines == [[4, 5], [6, 7]]
    assert plan.train.dp == 2
    assert plan.peak == pytest.approx(max(plan.train_total, plan.engine_total))
    table = format_plan(plan)
    assert "   1    0  engine 0 (tp rank 0)" in table and "   0    3  train rank 3" in table
    assert "tp=2 pp=1 cp=1 ep=1 etp=2 -> dp=2" in table


def test_engines_never_span_nodes():
    with pytest.raises(ValueError, match="span two nodes"):
        place("disaggregate", num_nodes=2, gpus_per_node=4, engine_gpus=6, num_engines=2, engine_tp=3)
    colocated = place("colocate", num_nodes=1, gpus_per_node=4, engine_gpus=0, num_engines=1, engine_tp=2)
    assert [role for _, _, role in colocated.rows()] == ["train rank 0 + engine 0 (tp rank 0)",
                                                          "train rank 1 + engine 0 (tp rank 1)",
                                                          "train rank 2", "train rank 3"]


def test_shape_from_config_json_and_known_names(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "qwen3", "hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 16, "intermediate_size": 128, "vocab_size": 1000,
        "tie_word_embeddings": False}))
    assert load_model_shape(tmp_path) == SMALL
    assert total_params(load_model_shape("/nowhere/Qwen3-32B")) == pytest.approx(32.8e9, rel=0.02)
    assert total_params(load_model_shape("/nowhere/Qwen3-4B")) == pytest.approx(4.02e9, rel=0.02)
    assert total_params(load_model_shape("/nowhere/Qwen3-30B-A3B")) == pytest.approx(30.5e9, rel=0.02)
    with pytest.raises(FileNotFoundError, match="not a known shape"):
        load_model_shape(tmp_path / "Qwen9")


def test_mc_plan_cli(tmp_path, capsys):
    (tmp_path / "run.yaml").write_text("model:\n  hf_dir: /models/Qwen3-4B\ncluster:\n  gpus_per_node: 8\n")
    assert main(["--config", str(tmp_path / "run.yaml"), "--set", "parallel.tp=2"]) == 0
    out = capsys.readouterr().out
    assert "dp=4" in out and "peak per GPU (colocate)" in out
    assert main(["--config", str(tmp_path / "run.yaml"), "--set", "parallel.tp=3"]) == 2
    assert "not divisible by tp*pp*cp" in capsys.readouterr().err


def test_tiny_default_plans_from_its_cached_checkpoint(tiny_default, monkeypatch, capsys):
    monkeypatch.setenv(CACHE_ENV, str(tiny_default.root.parent.parent))
    config = Path(__file__).resolve().parents[2] / "examples" / "configs" / "tiny_cpu.yaml"
    assert main(["--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "2 layers, hidden 128" in out and "dp=2" in out


CONFIGS = Path(__file__).resolve().parents[2] / "examples" / "configs"
GPU_CONFIGS = ["qwen3_4b_microcoder_grpo.yaml", "qwen3_32b_microcoder_grpo.yaml", "qwen3_30b_a3b_moe.yaml"]


def test_an_engine_wider_than_a_node_is_refused():
    with pytest.raises(ConfigError, match=r"rollout.tp_size 8 is wider than a node \(cluster.gpus_per_node 4\); "
                                          r"multi-node SGLang engines \(--nnodes, --node-rank, --dist-init-addr\) "
                                          r"are not supported"):
        check_cluster_layout(_cfg(rollout={"num_engines": 1, "tp_size": 8}))
    with pytest.raises(ConfigError, match=r"an engine on GPUs \[3, 4, 5\] would span two nodes \(multi-node SGLang"):
        check_cluster_layout(_cfg(rollout={"num_engines": 2, "tp_size": 3}))
    assert main_refuses(["cluster.num_nodes=2", "cluster.gpus_per_node=4", "rollout.tp_size=8",
                         "rollout.num_engines=1"], "wider than a node")


def test_tensor_weight_sync_only_where_ipc_reaches():
    with pytest.raises(ConfigError, match="cluster.mode is disaggregate; use rollout.weight_sync: distributed"):
        check_cluster_layout(_cfg(cluster={"mode": "disaggregate", "engine_gpus": 4}, parallel={"pp": 1},
                                  rollout={"num_engines": 2, "weight_sync": "tensor"}))
    with pytest.raises(ConfigError, match="cannot cross nodes, and cluster.num_nodes is 2; use rollout.weight_sync: "
                                          "disk .* or cluster.mode: disaggregate with rollout.weight_sync: "
                                          "distributed"):
        check_cluster_layout(_cfg(parallel={"pp": 1}, rollout={"weight_sync": "tensor"}))
    one_node = {"num_nodes": 1, "gpus_per_node": 8}
    with pytest.raises(ConfigError, match=r"parallel.pp is 2 \(each pipeline stage holds other layers\); use "
                                          r"rollout.weight_sync: disk"):
        check_cluster_layout(_cfg(cluster=one_node, rollout={"weight_sync": "tensor"}))
    check_cluster_layout(_cfg(cluster=one_node, parallel={"pp": 1}, rollout={"weight_sync": "tensor"}))
    for transport in ("disk", "distributed"):
        check_cluster_layout(_cfg(rollout={"weight_sync": transport}))


def main_refuses(overrides: list[str], reason: str) -> bool:
    """mc-plan on the 4B example with `overrides` exits 2 with `reason` on stderr."""
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["--config", str(CONFIGS / GPU_CONFIGS[0]), *[f"--set={item}" for item in overrides]])
    return code == 2 and reason in err.getvalue()


@pytest.mark.parametrize("name", GPU_CONFIGS)
def test_shipped_gpu_configs_pass_the_layout_checks_and_require_transformer_engine(name):
    cfg = load_config(CONFIGS / name)
    check_cluster_layout(cfg)
    assert cfg.model.transformer_impl == "transformer_engine"
    if transformer_engine_available():
        return
    with pytest.raises(RuntimeError, match=r"model.transformer_impl: transformer_engine requires Transformer Engine, "
                                           r"which does not import here \(.*\); install .*transformer-engine\[pytorch\]"
                                           r".* or set model.transformer_impl: local"):
        choose_impl(cfg.model)


def test_the_multi_node_colocated_moe_config_syncs_through_disk():
    cfg = load_config(CONFIGS / "qwen3_30b_a3b_moe.yaml")
    assert cfg.cluster.mode == "colocate" and cfg.cluster.num_nodes == 2 and cfg.parallel.pp == 2
    assert cfg.rollout.weight_sync == "disk"
    with pytest.raises(ConfigError, match="cannot cross nodes"):
        check_cluster_layout(load_config(CONFIGS / "qwen3_30b_a3b_moe.yaml", ["rollout.weight_sync=tensor"]))
