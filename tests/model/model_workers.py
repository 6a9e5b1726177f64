"""Scenarios run inside fresh gloo processes (Megatron-Core's CPU layer changes process-global torch
state, so it never runs inside the pytest process). Each rank writes what it measured to
<out>/result-<rank>.json; the tests assert on the merged results.

    python model_workers.py SCENARIO OUT_DIR   (with RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set)
"""
from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def launch(scenario: str, world_size: int, out_dir: Path, timeout_s: int = 420, cuda: bool = False,
           script: Path = Path(__file__)) -> dict:
    """Run `scenario` of `script` (this file unless given) on `world_size` local ranks (on CPU unless
    `cuda`); returns the merged results."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    for rank in range(world_size):
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank),
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1",
                   PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
        if not cuda:
            env["CUDA_VISIBLE_DEVICES"] = ""
        procs.append(subprocess.Popen([sys.executable, str(script), scenario, str(out_dir)], env=env,
                                      cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    logs = []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=timeout_s)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    failed = [(rank, p.returncode) for rank, p in enumerate(procs) if p.returncode != 0]
    if failed:
        tails = "\n".join(f"--- rank {r} (exit {c}) ---\n{logs[r][-4000:] if r < len(logs) else ''}" for r, c in failed)
        raise AssertionError(f"scenario {scenario} failed:\n{tails}")
    merged: dict = {}
    for rank in range(world_size):
        merged.update(json.loads((out_dir / f"result-{rank}.json").read_text()))
    return merged


# ---------------------------------------------------------------------------------------------------
# Inside a worker process


def _max_diff(a, b) -> float:
    return (a.float().cpu() - b.float().cpu()).abs().max().item()


def _tensors(hf_dir: Path) -> dict:
    from megatron_mc.checkpoint.safetensors_dir import SafetensorsDir

    reader = SafetensorsDir(str(hf_dir))
    return {name: reader.get(name) for name in reader.names()}


def _bit_mismatches(original: Path, exported: Path) -> list[str]:
    """Names whose tensors differ in name set, dtype, shape or any bit."""
    a, b = _tensors(original), _tensors(exported)
    bad = sorted(set(a) ^ set(b))
    for name in set(a) & set(b):
        x, y = a[name], b[name]
        if x.dtype != y.dtype or x.shape != y.shape or not torch.equal(x.view(torch.uint8), y.view(torch.uint8)):
            bad.append(name)
    return bad


def _build_and_load(hf_dir: Path, par, dtype="float32", rope_scaling=None, load=True):
    from megatron_mc.checkpoint.hf_import import load_hf_weights
    from megatron_mc.models.build import build_model, load_adapter
    from megatron_mc.models.config import ModelConfig

    cfg = ModelConfig(hf_dir=str(hf_dir), dtype=dtype, rope_scaling=rope_scaling)
    adapter = load_adapter(cfg)
    chunks = build_model(cfg, par, adapter)
    if load:
        load_hf_weights(chunks, adapter, str(hf_dir))
    return chunks, adapter


def _log_probs(chunks, adapter, tokens):
    from megatron_mc.models.forward import forward_logits, token_log_probs

    with torch.no_grad():
        logits = forward_logits(chunks, adapter, tokens)
        return None if logits is None else token_log_probs(logits[:, :-1], tokens[:, 1:])


def scenario_single(out: Path) -> dict:
    """World 1: every family's log-probs against HF, HF -> Megatron -> HF bit-identity (fp32 and bf16),
    missing/unexpected tensors, RoPE scaling beyond the original window."""
    from model_tiny import FAMILIES, hf_log_probs, make_hf_model, sample_tokens
    from safetensors.torch import load_file, save_file

    from megatron_mc.checkpoint.hf_export import save_hf_weights
    from megatron_mc.checkpoint.hf_import import CheckpointMismatch
    from megatron_mc.parallel import state
    from megatron_mc.parallel.config import ParallelConfig

    par = ParallelConfig()
    state.initialize(par)
    result = {"cpu_layer_loaded": "megatron_mc.platform.cpu" in sys.modules}
    tokens = sample_tokens(2, 20)
    for family in FAMILIES:
        hf_dir = out / family
        hf = make_hf_model(family, str(hf_dir))
        chunks, adapter = _build_and_load(hf_dir, par)
        result[f"logprob_diff/{family}"] = _max_diff(_log_probs(chunks, adapter, tokens), hf_log_probs(hf, tokens))
        save_hf_weights(chunks, adapter, str(out / f"{family}-export"))
        result[f"roundtrip/{family}"] = _bit_mismatches(hf_dir, out / f"{family}-export")

    hf_dir = out / "llama-bf16"
    make_hf_model("llama", str(hf_dir), dtype=torch.bfloat16)
    chunks, adapter = _build_and_load(hf_dir, par, dtype="bfloat16")
    save_hf_weights(chunks, adapter, str(out / "llama-bf16-export"))
    result["roundtrip/llama-bf16"] = _bit_mismatches(hf_dir, out / "llama-bf16-export")

    for label, mutate in (("unexpected", lambda t: t.update({"model.extra.weight": torch.zeros(2)})),
                          ("missing", lambda t: t.pop("model.norm.weight"))):
        bad = out / f"llama-{label}"
        shutil.copytree(out / "llama", bad)
        tensors = load_file(str(bad / "model.safetensors"))
        mutate(tensors)
        save_file(tensors, str(bad / "model.safetensors"))
        try:
            _build_and_load(bad, par)
            result[f"mismatch/{label}"] = ""
        except CheckpointMismatch as e:
            result[f"mismatch/{label}"] = str(e)

    long_tokens = sample_tokens(1, 48, seed=3)  # 3x the original window of 16 positions
    scalings = {
        "llama": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                  "original_max_position_embeddings": 16},
        "qwen3": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16},
    }
    for family, scaling in scalings.items():
        hf_dir = out / f"{family}-rope"
        hf = make_hf_model(family, str(hf_dir), rope_scaling=scaling, rope_theta=10000.0)
        reference = hf_log_probs(hf, long_tokens)
        chunks, adapter = _build_and_load(hf_dir, par)
        result[f"rope_diff/{scaling['rope_type']}"] = _max_diff(_log_probs(chunks, adapter, long_tokens), reference)
        chunks, adapter = _build_and_load(hf_dir, par, rope_scaling={"rope_type": "default"})
        result[f"rope_unscaled_diff/{scaling['rope_type']}"] = _max_diff(_log_probs(chunks, adapter, long_tokens), reference)
    return result


LAYOUTS = {
    "tp2": dict(tp=2),
    "tp2_sp": dict(tp=2, sequence_parallel=True),
    "pp2": dict(pp=2),
    "pp2_vpp2": dict(pp=2, vpp=2),
    "ep2": dict(ep=2),
    "cp2": dict(cp=2),
}


def layouts_for(family: str) -> list[str]:
    """Every layout but EP=2 for dense families; for the MoE family, EP=2 instead of plain TP=2."""
    return [n for n in LAYOUTS if (n == "ep2") == (family == "qwen3_moe") or n in ("tp2_sp", "cp2")
            or n.startswith("pp2")]


def scenario_parallel(out: Path) -> dict:
    """World 2: each layout's log-probs against TP=1 and HF, export bit-identity from each layout, a
    dist checkpoint saved under TP=2 (EP=2 for MoE) loaded under TP=1 and PP=2 with the same loss, and
    the training steps of scenario_train (one process group for all: Megatron starts slowly)."""
    import torch.distributed as dist
    from model_tiny import FAMILIES, hf_log_probs, make_hf_model, sample_tokens

    from megatron_mc.checkpoint.dist import load_dist_checkpoint, save_dist_checkpoint
    from megatron_mc.checkpoint.hf_export import save_hf_weights
    from megatron_mc.parallel import state
    from megatron_mc.parallel.config import ParallelConfig

    rank = int(os.environ["RANK"])
    tokens = sample_tokens(2, 16)
    hf_models = {f: make_hf_model(f, str(out / f"{f}-r{rank}")) for f in FAMILIES}
    reference = {f: hf_log_probs(m, tokens) for f, m in hf_models.items()}
    result = {}

    def run(layout_name, layout, family, after=None):
        par = ParallelConfig(**layout)
        state.initialize(par)
        try:
            chunks, adapter = _build_and_load(out / f"{family}-r{rank}", par)
            lp = _log_probs(chunks, adapter, tokens)
            if lp is not None:
                result[f"{layout_name}/{family}/vs_hf"] = _max_diff(lp, reference[family])
                result[f"{layout_name}/{family}/logprobs"] = lp.tolist()
            if after:
                after(chunks, adapter)
        finally:
            state.destroy(keep_process_group=True)

    for family in FAMILIES:
        run("tp1", {}, family)
        for name in layouts_for(family):
            layout = LAYOUTS[name]
            export = out / f"export-{name}-{family}"
            run(name, layout, family,
                after=lambda chunks, adapter, export=export: save_hf_weights(chunks, adapter, str(export)))
            if rank == 0:
                result[f"{name}/{family}/roundtrip"] = _bit_mismatches(out / f"{family}-r0", export)

    for family, saved_under in (("qwen3", dict(tp=2)), ("qwen3_moe", dict(ep=2))):
        ckpt = out / f"ckpt-{family}"
        run("ckpt_save", saved_under, family, after=lambda c, a, ckpt=ckpt: save_dist_checkpoint(c, str(ckpt), a.hf))
        result[f"ckpt/{family}/processes_left_by_save/r{rank}"] = [p.name for p in multiprocessing.active_children()]
        for name, layout in (("tp1", {}), ("pp2", dict(pp=2)), ("tp2_sp", dict(tp=2, sequence_parallel=True))):
            par = ParallelConfig(**layout)
            state.initialize(par)
            try:
                chunks, adapter = _build_and_load(out / f"{family}-r{rank}", par, load=False)
                lp_random = _log_probs(chunks, adapter, tokens)
                load_dist_checkpoint(chunks, str(ckpt))
                lp = _log_probs(chunks, adapter, tokens)
                if lp is not None:
                    result[f"ckpt/{family}/{name}/loss"] = -lp.mean().item()
                    result[f"ckpt/{family}/{name}/random_loss"] = -lp_random.mean().item()
                    result[f"ckpt/{family}/{name}/hf_loss"] = -reference[family].mean().item()
            finally:
                state.destroy(keep_process_group=True)
    dist.barrier()
    return result | scenario_train(out)


FOUR_RANK_LAYOUTS = {
    "cp2_tp2_sp": dict(cp=2, tp=2, sequence_parallel=True),
    "cp2_pp2": dict(cp=2, pp=2),
}


def scenario_four(out: Path) -> dict:
    """World 4: context parallelism combined with TP + sequence parallelism and with PP, against HF."""
    from model_tiny import hf_log_probs, make_hf_model, sample_tokens

    from megatron_mc.parallel import state
    from megatron_mc.parallel.config import ParallelConfig

    rank = int(os.environ["RANK"])
    tokens = sample_tokens(2, 16)
    families = ("qwen3", "qwen3_moe")
    # every HF model before the process group: transformers saves only on rank 0 once one exists
    references = {f: hf_log_probs(make_hf_model(f, str(out / f"{f}-r{rank}")), tokens) for f in families}
    result = {}
    for family in families:
        hf_dir, reference = out / f"{family}-r{rank}", references[family]
        for name, layout in FOUR_RANK_LAYOUTS.items():
            par = ParallelConfig(**layout)
            state.initialize(par)
            try:
                chunks, adapter = _build_and_load(hf_dir, par)
                lp = _log_probs(chunks, adapter, tokens)
                if lp is not None:
                    result[f"{name}/{family}/vs_hf"] = _max_diff(lp, reference)
            finally:
                state.destroy(keep_process_group=True)
    return result


def scenario_train(out: Path) -> dict:
    """World 2: three optimizer steps under DP=2 (same data), DP=2 with the distributed optimizer
    (different data per rank) and TP=2 with sequence parallelism (same data): losses per step, and a
    checksum of every rank's parameters to compare replicas."""
    import torch.distributed as dist
    from megatron.core import parallel_state as ps
    from megatron.core.distributed import finalize_model_grads
    from model_tiny import make_hf_model, sample_tokens

    from megatron_mc.parallel import state
    from megatron_mc.parallel.config import ParallelConfig
    from megatron_mc.parallel.training import build_optimizer, wrap_ddp

    rank = int(os.environ["RANK"])
    hf_dir = out / f"qwen3-r{rank}"
    if not hf_dir.exists():
        make_hf_model("qwen3", str(hf_dir))
    layouts = {
        "dp2": (dict(), 0),
        "dp2_distopt": (dict(distributed_optimizer=True, overlap_grad_reduce=True), rank),
        "tp2_sp": (dict(tp=2, sequence_parallel=True), 0),
    }
    result = {}
    for name, (layout, data_seed) in layouts.items():
        par = ParallelConfig(**layout)
        state.initialize(par)
        try:
            chunks, adapter = _build_and_load(hf_dir, par)
            model = wrap_ddp(chunks, par)
            optimizer = build_optimizer(model, par, lr=1e-2)
            tokens = sample_tokens(2, 17, seed=10 + data_seed)
            positions = torch.arange(17).unsqueeze(0).expand(2, 17)
            losses = []
            for _ in range(3):
                model[0].zero_grad_buffer()
                optimizer.zero_grad()
                loss = model[0](tokens[:, :-1], positions[:, :-1], attention_mask=None, labels=tokens[:, 1:]).mean()
                loss.backward()
                finalize_model_grads(model)
                optimizer.step()
                losses.append(loss.item())
            checksum = torch.tensor([sum(p.detach().double().sum().item() for p in model[0].parameters())], dtype=torch.float64)
            sums = [torch.zeros(1, dtype=torch.float64) for _ in range(dist.get_world_size())]
            dist.all_gather(sums, checksum)
            result[f"{name}/losses/r{rank}"] = losses
            result[f"{name}/checksums"] = [t.item() for t in sums]
            result[f"{name}/dp"] = ps.get_data_parallel_world_size()
        finally:
            state.destroy(keep_process_group=True)
    return result


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    out_dir = Path(sys.argv[2])
    scenario = {"single": scenario_single, "parallel": scenario_parallel, "four": scenario_four}[sys.argv[1]]
    measured = scenario(out_dir)
    (out_dir / f"result-{os.environ.get('RANK', '0')}.json").write_text(json.dumps(measured))
