"""mc-plan --search: the memory model against Megatron-Core's own parameter counts (the shipped shapes built
on the meta device, tiny dense and MoE models on CPU) and against what autograd really keeps for the
backward pass of tiny models; the divisibility rules against TransformerConfig's validation; ranking
sanity; the CLI on the shipped configs.

Activation memory is measured with saved-tensor hooks (every tensor autograd keeps for the backward pass,
counted once per storage, parameters left out): that is the quantity the activation model estimates, and
it is exact. The CPU allocator's peaks (tracemalloc does not see torch's allocations; RSS and the
profiler's memory events include allocator caching and transients) say less about it.

The Megatron-Core work runs in one fresh gloo process (its CPU layer changes process-global torch state):
    python tests/planning/test_layout_search.py worker OUT_DIR
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "examples" / "configs"
SHIPPED = ("Qwen3-4B", "Qwen3-32B", "Qwen3-30B-A3B")
TOKENS = 1024  # one micro batch of the tiny models
TINY = {  # hidden 128 so that the per-layer terms dominate the few fixed ones (tokens, final norm)
    "qwen3": dict(hidden_size=128, intermediate_size=384, num_attention_heads=4, num_key_value_heads=2, head_dim=32,
                  max_position_embeddings=TOKENS),
    "qwen3_moe": dict(hidden_size=128, intermediate_size=384, num_attention_heads=4, num_key_value_heads=2,
                      head_dim=32, max_position_embeddings=TOKENS, moe_intermediate_size=64, num_experts=8,
                      num_experts_per_tok=2),
}


# ---------------------------------------------------------------------------------------------------
# Inside the worker process


def _saved_bytes(model, tokens) -> int:
    """Bytes of the storages autograd keeps for the backward pass, parameters left out."""
    import torch

    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    positions = torch.arange(tokens.shape[1])[None]
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(tokens, positions, attention_mask=None).sum().backward()
    return sum(saved.values())


def _worker(out: Path) -> None:
    sys.path.insert(0, str(REPO / "tests" / "model"))
    import torch
    from model_tiny import hf_config

    from megatron_mc.models.build import build_model
    from megatron_mc.models.config import ModelConfig
    from megatron_mc.parallel import state
    from megatron_mc.parallel.config import ParallelConfig
    from megatron_mc.planning.model_shape import KNOWN_HF_CONFIGS

    state.initialize(ParallelConfig())
    result: dict = {}
    for family, fields in TINY.items():
        hf_dir = out / family
        config = hf_config(family)
        for key, value in fields.items():
            setattr(config, key, value)
        config.save_pretrained(hf_dir)
        torch.manual_seed(0)
        model = build_model(ModelConfig(hf_dir=str(hf_dir), dtype="float32"), ParallelConfig())[0]
        tokens = torch.randint(0, 250, (1, TOKENS))
        result[family] = {"params": sum(p.numel() for p in model.parameters()), "saved": _saved_bytes(model, tokens),
                          "config": json.loads((hf_dir / "config.json").read_text())}
    # the shipped shapes, every layer, on the meta device: Megatron-Core's own modules, no memory
    moving = torch.nn.Module.to
    torch.nn.Module.to = lambda self, *args, **kwargs: self  # build_model moves chunks to the CPU
    try:
        for name in SHIPPED:
            hf_dir = out / name
            hf_dir.mkdir()
            architecture = "Qwen3MoeForCausalLM" if "A3B" in name else "Qwen3ForCausalLM"
            (hf_dir / "config.json").write_text(json.dumps({**KNOWN_HF_CONFIGS[name], "architectures": [architecture]}))
            with torch.device("meta"):
                chunks = build_model(ModelConfig(hf_dir=str(hf_dir), dtype="float32"), ParallelConfig())
            result[name] = sum(p.numel() for chunk in chunks for p in chunk.parameters())
    finally:
        torch.nn.Module.to = moving
    (out / "result.json").write_text(json.dumps(result))


# ---------------------------------------------------------------------------------------------------
# The tests


@pytest.fixture(scope="module")
def megatron(tmp_path_factory):
    out = tmp_path_factory.mktemp("layout_search")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
               CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1", PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    done = subprocess.run([sys.executable, __file__, "worker", str(out)], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads((out / "result.json").read_text())


@pytest.mark.parametrize("name", SHIPPED)
def test_parameter_count_of_the_shipped_shapes_is_megatrons(megatron, name):
    from megatron_mc.planning.memory import total_params
    from megatron_mc.planning.model_shape import load_model_shape

    assert total_params(load_model_shape(f"/nowhere/{name}")) == pytest.approx(megatron[name], rel=0.001)


@pytest.mark.parametrize("family", TINY)
def test_parameter_count_of_tiny_models_is_megatrons(megatron, family):
    from megatron_mc.planning.memory import total_params
    from megatron_mc.planning.model_shape import ModelShape

    shape = ModelShape.from_hf_config(megatron[family]["config"])
    assert bool(shape.num_experts) == (family == "qwen3_moe")
    # within 1%: Megatron pads the 250-token vocabulary to 256
    assert total_params(shape) == pytest.approx(megatron[family]["params"], rel=0.01)


@pytest.mark.parametrize("family", TINY)
def test_activation_estimate_against_what_autograd_keeps(megatron, family):
    from megatron_mc.planning.activations import Recompute, activation_bytes
    from megatron_mc.planning.model_shape import ModelShape

    shape = ModelShape.from_hf_config(megatron[family]["config"])
    local = activation_bytes(shape, Recompute(), tp=1, etp=1, pp=1, vpp=1, sequence_parallel=False, dtype_bytes=4,
                             tokens=TOKENS, micro_batches=1, fused=False)
    assert 0.8 < megatron[family]["saved"] / local < 1.2
    fused = activation_bytes(shape, Recompute(), tp=1, etp=1, pp=1, vpp=1, sequence_parallel=False, dtype_bytes=4,
                             tokens=TOKENS, micro_batches=1)
    assert fused < local  # TE's fused norms, RoPE and SwiGLU keep less


def _shape(**fields):
    from megatron_mc.planning.model_shape import ModelShape

    base = dict(hidden_size=64, num_layers=4, num_heads=4, num_kv_heads=2, head_dim=16, ffn_hidden_size=128,
                vocab_size=256, tie_word_embeddings=False)
    return ModelShape(**{**base, **fields})


def test_recompute_choices_order_activation_memory():
    from megatron_mc.planning.activations import Recompute, activation_bytes

    moe = _shape(num_experts=8, moe_ffn_hidden_size=32, experts_per_token=2)
    for shape, block in ((_shape(), "mlp"), (moe, "moe")):
        def act(recompute, **kw):
            args = dict(tp=2, etp=1, pp=2, vpp=1, sequence_parallel=True, dtype_bytes=2, tokens=4096, micro_batches=8)
            return activation_bytes(shape, recompute, **{**args, **kw})
        none = act(Recompute())
        assert act(Recompute("selective", ("core_attn",))) == none  # flash attention: nothing to free
        assert act(Recompute("selective", ("layernorm", block))) < none
        assert act(Recompute("full", (), "uniform", 1)) < act(Recompute("full", (), "block", 1)) < none
        assert act(Recompute(), sequence_parallel=False) > none
        assert act(Recompute(), vpp=2) > none  # the interleaved schedule's warm-up holds more
        assert act(Recompute(), micro_batches=1) == pytest.approx(none / 2)  # one micro batch in flight, not pp


def _megatron_builds(shape, **sizes) -> int:
    """Megatron-Core's own validation of a layout: its TransformerConfig, then how many layers the first
    pipeline rank's first model chunk builds (where it checks the pipeline split)."""
    import torch
    from megatron.core.transformer.transformer_block import get_num_layers_to_build
    from megatron.core.transformer.transformer_config import TransformerConfig

    config = TransformerConfig(num_layers=shape.num_layers, hidden_size=shape.hidden_size,
                               num_attention_heads=shape.num_heads, num_query_groups=shape.num_kv_heads,
                               kv_channels=shape.head_dim, ffn_hidden_size=shape.ffn_hidden_size,
                               use_cpu_initialization=True, pipeline_dtype=torch.float32,
                               **{k: v for k, v in sizes.items() if v is not None})
    return get_num_layers_to_build(config, vp_stage=0, pp_rank=0)


@pytest.mark.parametrize("sizes,rule,megatron_says", [
    (dict(tp=3), "tp=3 must divide num_attention_heads=4", "must be a multiple of tensor_model_parallel_size"),
    (dict(pp=3), "pp\\*vpp=3 must divide num_hidden_layers=4", "divisible by pipeline_model_parallel_size"),
    (dict(pp=2, vpp=4), "pp\\*vpp=8 must divide num_hidden_layers=4", ""),
    (dict(ep=2), "ep=2 needs a mixture-of-experts model", "num_moe_experts must be non None"),
])
def test_a_layout_the_rules_refuse_fails_megatrons_validation(sizes, rule, megatron_says):
    from megatron_mc.parallel.config import ParallelConfig
    from megatron_mc.planning.activations import Recompute
    from megatron_mc.planning.rules import RunNeeds, layout_problem

    shape = _shape()
    needs = RunNeeds(max_sequence_tokens=512, micro_batch_tokens=1024, samples_per_optimizer_step=64, padded_vocab=256)
    par = ParallelConfig(**sizes)
    world = par.tp * par.pp * par.cp * par.ep * 2
    assert re_search(rule, layout_problem(shape, needs, par, world, Recompute()))
    with pytest.raises((ValueError, AssertionError), match=megatron_says):
        _megatron_builds(shape, **par.megatron_sizes())
    # the same model under sizes the rules accept passes Megatron-Core's validation
    accepted = ParallelConfig(tp=2, pp=2, vpp=2)
    assert layout_problem(shape, needs, accepted, 8, Recompute()) is None
    assert _megatron_builds(shape, **accepted.megatron_sizes()) == 1


def re_search(pattern, text):
    import re

    return text is not None and re.search(pattern, text)


def test_run_level_rules_name_what_breaks():
    from megatron_mc.parallel.config import ParallelConfig
    from megatron_mc.planning.activations import Recompute
    from megatron_mc.planning.rules import RunNeeds, layout_problem

    shape = _shape()
    needs = RunNeeds(max_sequence_tokens=1001, micro_batch_tokens=1008, samples_per_optimizer_step=12, padded_vocab=256)
    # cp 16 cuts a sequence into 32 chunks: 1001 tokens pad to 1024
    assert "padded to 1024 for cp=16) does not fit train.micro_batch_tokens=1008" in layout_problem(
        shape, needs, ParallelConfig(cp=16), 16, Recompute())
    assert layout_problem(shape, needs, ParallelConfig(cp=8), 8, Recompute()) is None
    assert "dp=8 must divide the 12 samples" in layout_problem(shape, needs, ParallelConfig(), 8, Recompute())
    assert "recompute_num_layers=3 does not fit" in layout_problem(shape, needs, ParallelConfig(), 4,
                                                                   Recompute("full", (), "uniform", 3))
    assert layout_problem(shape, needs, ParallelConfig(), 4, Recompute("full", (), "block", 3)) is None


def _search(name, gpus, memory=80.0, weight_sync=None, **assumed):
    from megatron_mc.config import load_config
    from megatron_mc.planning.model_shape import load_model_shape
    from megatron_mc.planning.search import search
    from megatron_mc.planning.step_time import Assumptions

    cfg = load_config(CONFIGS / name, [f"rollout.weight_sync={weight_sync}"] if weight_sync else [])
    return search(cfg, load_model_shape(cfg.model.hf_dir), gpus, memory, Assumptions(**assumed), keep=1000)


def test_ranked_layouts_all_fit_and_more_memory_only_adds_layouts():
    from megatron_mc.planning.memory import GIB

    small, large = _search("qwen3_4b_microcoder_grpo.yaml", 8, 40), _search("qwen3_4b_microcoder_grpo.yaml", 8, 80)
    for result, memory in ((small, 40), (large, 80)):
        assert result.fits and all(c.peak <= (memory - 4) * GIB and not c.lacks for c in result.fits)
        assert [c.step for c in result.fits] == sorted(c.step for c in result.fits)
        assert all(c.lacks for c in result.closest)
    assert len(large.fits) > len(small.fits)
    assert large.fits[0].step <= small.fits[0].step


def test_dense_4b_on_one_node_wins_with_little_tensor_parallelism():
    fits = _search("qwen3_4b_microcoder_grpo.yaml", 8).fits
    assert fits[0].par.tp <= 2 and fits[0].mode == "colocate" and fits[0].train_gpus == 8
    # its CUDA IPC weight sync (rollout.weight_sync: tensor) keeps every layer on the engines' GPUs
    assert all(c.par.pp == 1 and c.mode == "colocate" for c in fits)
    assert any(c.par.pp > 1 for c in _search("qwen3_4b_microcoder_grpo.yaml", 8, weight_sync="disk").fits)


def test_disaggregated_overlap_changes_the_step():
    sync = _search("qwen3_32b_microcoder_grpo.yaml", 48).fits[0]
    overlapped = _search("qwen3_32b_microcoder_grpo.yaml", 48, async_rollout=True).fits[0]
    assert overlapped.step < sync.step and overlapped.mode == "disaggregate"


def test_step_time_grows_with_communication_and_slower_links():
    from megatron_mc.parallel.config import ParallelConfig
    from megatron_mc.planning.activations import Recompute
    from megatron_mc.planning.step_time import Assumptions, Workload, train_time

    shape = _shape(hidden_size=1024, num_heads=16, num_kv_heads=8, head_dim=64, ffn_hidden_size=4096)
    work = Workload(sequences_per_step=256, optimizer_steps=2, max_prompt_tokens=1024, max_new_tokens=3072,
                    micro_batch_tokens=4096, forward_only_passes=1, gpus_per_node=8, dtype_bytes=2)
    params = (1e8, 0.0)

    def total(par, world=16, **a):
        return sum(train_time(shape, work, Assumptions(**a), par, world, Recompute(), params).values())
    tp8 = ParallelConfig(tp=8, sequence_parallel=True)
    assert total(tp8) > total(ParallelConfig(tp=2, sequence_parallel=True))
    assert total(tp8, world=8, inter_node_gbs=10) == total(tp8, world=8)  # one node: nothing crosses nodes
    assert total(ParallelConfig(tp=2, sequence_parallel=True), inter_node_gbs=10) > \
        total(ParallelConfig(tp=2, sequence_parallel=True))  # dp 8 crosses nodes
    recompute = train_time(shape, work, Assumptions(), ParallelConfig(), 16, Recompute("full", (), "uniform", 1), params)
    # one more forward of the layers, beside 3 training passes and the old log-probs' forward (4 in all)
    assert 0.2 < recompute["recompute"] / recompute["compute"] <= 0.25
    bubble = train_time(shape, work, Assumptions(), ParallelConfig(pp=4), 16, Recompute(), params)["bubble"]
    assert bubble > train_time(shape, work, Assumptions(), ParallelConfig(pp=4, vpp=2), 16, Recompute(), params)["bubble"]


def test_rollout_time_from_a_given_rate_or_the_roofline():
    from megatron_mc.planning.step_time import Assumptions, Workload, rollout_time, weights_read

    work = Workload(sequences_per_step=64, optimizer_steps=1, max_prompt_tokens=1000, max_new_tokens=3000,
                    micro_batch_tokens=4096, forward_only_passes=1, gpus_per_node=8, dtype_bytes=2)
    dense = _shape(hidden_size=1024, num_heads=16, num_kv_heads=8, head_dim=64, ffn_hidden_size=4096)
    given = rollout_time(dense, work, Assumptions(decode_tokens_per_s=1000, tflops=1e9), 4, 1, 64)
    assert given == pytest.approx(16 * 1500 / 1000, rel=1e-3)  # 16 sequences an engine, 1500 tokens each
    roofline = Assumptions()
    assert rollout_time(dense, work, roofline, 8, 1, 64) < rollout_time(dense, work, roofline, 4, 1, 64)
    assert rollout_time(dense, work, roofline, 4, 1, 4) > rollout_time(dense, work, roofline, 4, 1, 64)
    moe = _shape(num_experts=64, moe_ffn_hidden_size=32, experts_per_token=4)
    assert weights_read(moe, 1) < weights_read(moe, 8) < weights_read(moe, 512) <= weights_read(moe, 10 ** 6)
    assert weights_read(dense, 1) == weights_read(dense, 512)


CLI_CASES = [("qwen3_30b_a3b_moe.yaml", 16), ("qwen3_30b_a3b_moe.yaml", 64), ("qwen3_32b_microcoder_grpo.yaml", 48)]


@pytest.mark.parametrize("name,gpus", CLI_CASES)
def test_cli_prints_layouts_for_the_shipped_configs(capsys, name, gpus):
    from megatron_mc.planning.cli import main

    assert main(["--search", "--config", str(CONFIGS / name), "--gpus", str(gpus), "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert f"layout search: {gpus} GPUs of 80 GiB" in out and "assumed: 400 TFLOP/s" in out
    assert "#1  step" in out and "#3  step" in out and "#4  step" not in out
    assert out.count("beats #") == 3 and "less step time" in out
    assert "--set parallel.tp=" in out and "the config's own layout" in out


def test_cli_says_what_the_closest_layouts_lack(capsys):
    from megatron_mc.planning.cli import main

    assert main(["--search", "--config", str(CONFIGS / "qwen3_32b_microcoder_grpo.yaml"), "--gpus", "8",
                 "--gpu-memory", "24"]) == 0
    out = capsys.readouterr().out
    assert "nothing fits in 24 GiB per GPU (20 GiB usable). Closest:" in out
    assert "lacks" in out and "train rank needs" in out


@pytest.mark.parametrize("args,named", [
    (["--gpus", "12"], "--gpus 12: expected a positive number of GPUs, whole nodes"),
    (["--gpus", "0"], "--gpus 0"),
    (["--gpus", "16"], "--gpus 16: rollout.weight_sync: tensor (CUDA IPC) cannot cross nodes"),
    ([], "--search needs --gpus N"),
    (["--gpus", "8", "--set", "parallel.tq=2"], "parallel.tq"),
    (["--gpus", "8", "--tflops", "0"], "--tflops must be > 0"),
    (["--gpus", "8", "--gpu-memory", "3"], "--gpu-memory 3.0 GiB leaves nothing"),
])
def test_cli_names_bad_input(capsys, args, named):
    from megatron_mc.planning.cli import main

    assert main(["--search", "--config", str(CONFIGS / "qwen3_4b_microcoder_grpo.yaml"), *args]) == 2
    assert named in capsys.readouterr().err


def test_plain_plan_still_prints_and_refuses_search_flags(capsys):
    from megatron_mc.planning.cli import main

    config = str(CONFIGS / "qwen3_4b_microcoder_grpo.yaml")
    assert main(["--config", config]) == 0
    assert "peak per GPU (colocate)" in capsys.readouterr().out
    assert main(["--config", config, "--gpus", "8"]) == 2
    assert "--gpus and --gpu-memory apply to --search" in capsys.readouterr().err


if __name__ == "__main__" and sys.argv[1:2] == ["worker"]:
    sys.path.insert(0, str(REPO))
    _worker(Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tempfile.mkdtemp()))
