"""Attention scenarios in fresh spawned gloo processes (Megatron-Core's CPU layer changes process-global
torch state, so it never runs inside the pytest process): `run(scenario, world_size, out_dir)` returns
what rank 0 measured."""
from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
# Real lengths 7, 13, 4 in segments padded to multiples of 2 * cp = 4, then a filler segment to 36 tokens.
REAL_LENGTHS = [7, 13, 4, 0]
PADDED_LENGTHS = [8, 16, 4, 8]
YARN = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16}


def run(scenario: str, world_size: int, out_dir: Path) -> dict:
    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(_worker, args=(world_size, port, scenario, str(out_dir)), nprocs=world_size,
                       start_method="spawn")
    return json.loads((out_dir / "result.json").read_text())


def _worker(rank: int, world_size: int, port: int, scenario: str, out_dir: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                      CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
    sys.path.insert(0, str(HERE))
    torch.set_num_threads(1)
    result = {"single": scenario_single, "cp2": scenario_cp2}[scenario](Path(out_dir))
    if rank == 0:
        (Path(out_dir) / "result.json").write_text(json.dumps(result))


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.detach().double() - b.detach().double()).abs().max().item()


def _model(hf_dir: Path, par, local_attention: str = "sdpa"):
    """A GPTModel of the local layers with HF weights, its core attention chosen by `local_attention`."""
    from megatron.core import parallel_state
    from megatron.core.models.gpt import GPTModel

    from megatron_mc.checkpoint.hf_import import load_hf_weights
    from megatron_mc.models import rope as rope_mod
    from megatron_mc.models.build import load_adapter, transformer_config
    from megatron_mc.models.config import ModelConfig
    from megatron_mc.models.layer_spec import decoder_spec, layer_spec

    cfg = ModelConfig(hf_dir=str(hf_dir), dtype="float32", local_attention=local_attention)
    adapter = load_adapter(cfg)
    config = transformer_config(cfg, par, adapter, "local")
    spec = layer_spec("local", adapter.num_experts, adapter.qk_layernorm, context_parallel=par.cp > 1,
                      local_attention=local_attention)
    model = GPTModel(config=config, transformer_layer_spec=decoder_spec("local", spec, config, None),
                     vocab_size=adapter.padded_vocab, max_sequence_length=64,
                     pre_process=parallel_state.is_pipeline_first_stage(),
                     post_process=parallel_state.is_pipeline_last_stage(), parallel_output=True,
                     share_embeddings_and_output_weights=adapter.tied, **rope_mod.gpt_model_kwargs(adapter.rope))
    load_hf_weights([model], adapter, str(hf_dir))
    return model


def _packed_params(cp_size: int = 1):
    from megatron.core.packed_seq_params import PackedSeqParams

    real = torch.tensor([0, *REAL_LENGTHS]).cumsum(0).int()
    padded = torch.tensor([0, *PADDED_LENGTHS]).cumsum(0).int()
    return PackedSeqParams(qkv_format="thd", cu_seqlens_q=real, cu_seqlens_kv=real, cu_seqlens_q_padded=padded,
                           cu_seqlens_kv_padded=padded, max_seqlen_q=max(PADDED_LENGTHS),
                           max_seqlen_kv=max(PADDED_LENGTHS))


def _packed_tokens() -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """[T] packed tokens (pad tokens random too: no real token may see them), [T] positions restarting
    per segment, and each sequence's real tokens."""
    from model_tiny import sample_tokens

    sequences = [sample_tokens(1, n, seed=20 + i)[0] for i, n in enumerate(REAL_LENGTHS)]
    pads = [sample_tokens(1, p - n, seed=40 + i)[0] for i, (n, p) in enumerate(zip(REAL_LENGTHS, PADDED_LENGTHS))]
    tokens = torch.cat([torch.cat(pair) for pair in zip(sequences, pads)])
    positions = torch.cat([torch.arange(p) for p in PADDED_LENGTHS])
    return tokens, positions, sequences


def _packed_vs_alone(model) -> float:
    """Largest difference between the logits of real tokens in the packed micro-batch and of each
    sequence run alone."""
    tokens, positions, sequences = _packed_tokens()
    with torch.no_grad():
        packed = model(tokens[None], positions[None], attention_mask=None, packed_seq_params=_packed_params())[0]
        starts = torch.tensor([0, *PADDED_LENGTHS]).cumsum(0).tolist()
        diffs = [_max_diff(packed[start:start + len(seq)], model(seq[None], torch.arange(len(seq))[None],
                                                                 attention_mask=None)[0])
                 for start, seq in zip(starts, sequences) if len(seq)]
    return max(diffs)


def scenario_single(out: Path) -> dict:
    """World 1, fp32: SDPA against Megatron's DotProductAttention (logits and every gradient) on a padded
    batch; packed THD logits against each sequence alone, with plain RoPE and with YaRN."""
    from model_tiny import make_hf_model, sample_tokens

    from megatron_mc.parallel import state
    from megatron_mc.parallel.config import ParallelConfig

    par = ParallelConfig()
    state.initialize(par)
    make_hf_model("qwen3", str(out / "qwen3"))
    make_hf_model("qwen3", str(out / "qwen3-yarn"), rope_scaling=YARN, rope_theta=10000.0)
    result = {}

    models = {name: _model(out / "qwen3", par, name) for name in ("sdpa", "dot_product")}
    result["core_attention"] = {name: type(m.decoder.layers[0].self_attention.core_attention).__name__
                                for name, m in models.items()}
    tokens = sample_tokens(2, 20)
    positions = torch.arange(20).expand(2, 20)
    vocab = models["sdpa"].output_layer.weight.shape[0]
    weights = torch.randn(2, 20, vocab, generator=torch.Generator().manual_seed(5))
    logits, grads = {}, {}
    for name, model in models.items():
        logits[name] = model(tokens, positions, attention_mask=None)
        (logits[name] * weights).sum().backward()
        grads[name] = {n: p.grad for n, p in model.named_parameters()}
    result["padded/logits_diff"] = _max_diff(logits["sdpa"], logits["dot_product"])
    # relative to each gradient's largest entry: fp32 sums over thousands of logits are large
    result["padded/grad_diff"] = max(_max_diff(g, grads["dot_product"][n]) / g.abs().max().item()
                                     for n, g in grads["sdpa"].items())
    result["padded/grad_count"] = len(grads["sdpa"])

    result["packed/rope_diff"] = _packed_vs_alone(models["sdpa"])
    result["packed/yarn_diff"] = _packed_vs_alone(_model(out / "qwen3-yarn", par))
    state.destroy()
    return result


def scenario_cp2(out: Path) -> dict:
    """World 2: the packed micro-batch and a padded batch under CP=2 (each rank its zig-zag part of every
    segment) give the logits of the unsplit run (CP=1)."""
    import torch.distributed as dist
    from model_tiny import make_hf_model, sample_tokens

    from megatron_mc.algo.context_parallel import zigzag_indices
    from megatron_mc.parallel import state
    from megatron_mc.parallel.config import ParallelConfig

    rank = int(os.environ["RANK"])
    hf_dir = out / f"qwen3-r{rank}"
    make_hf_model("qwen3", str(hf_dir))
    packed_tokens, packed_positions, _ = _packed_tokens()
    padded_tokens = sample_tokens(2, 16)
    starts = torch.tensor([0, *PADDED_LENGTHS]).cumsum(0).tolist()

    def held_by(r: int, segments: list[tuple[int, int]]) -> torch.Tensor:
        return torch.cat([start + zigzag_indices(end - start, 2, r) for start, end in segments])

    def run(cp: int) -> tuple[torch.Tensor, torch.Tensor]:
        par = ParallelConfig(cp=cp)
        state.initialize(par)
        try:
            model = _model(hf_dir, par)
            packed_part = held_by(rank, list(zip(starts[:-1], starts[1:]))) if cp > 1 else torch.arange(starts[-1])
            padded_part = held_by(rank, [(0, 16)]) if cp > 1 else torch.arange(16)
            with torch.no_grad():
                packed = model(packed_tokens[packed_part][None], packed_positions[packed_part][None],
                               attention_mask=None, packed_seq_params=_packed_params())[0]
                padded = model(padded_tokens[:, padded_part], padded_part.expand(2, -1), attention_mask=None)
            if cp == 1:
                return packed, padded
            # every rank's part back in sequence order
            return _merge(packed, held_by, list(zip(starts[:-1], starts[1:])), 0), _merge(padded, held_by, [(0, 16)], 1)
        finally:
            state.destroy(keep_process_group=True)

    split_packed, split_padded = run(2)
    whole_packed, whole_padded = run(1)
    dist.barrier()
    real = torch.cat([torch.arange(start, start + n) for start, n in zip(starts, REAL_LENGTHS)])
    return {"packed_diff": _max_diff(split_packed[real], whole_packed[real]),
            "padded_diff": _max_diff(split_padded, whole_padded),
            "packed_tokens_per_rank": len(held_by(rank, list(zip(starts[:-1], starts[1:]))))}


def _merge(part: torch.Tensor, held_by, segments: list[tuple[int, int]], dim: int) -> torch.Tensor:
    import torch.distributed as dist

    parts = [torch.empty_like(part) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, part.contiguous())
    positions = torch.cat([held_by(r, segments) for r in range(len(parts))])
    return torch.cat(parts, dim=dim).index_select(dim, torch.argsort(positions))
