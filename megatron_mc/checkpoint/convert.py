"""Offline conversion between HF checkpoints and Megatron distributed checkpoints (the tools call these on
every rank after parallel state is initialized)."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional

import torch.distributed as dist

from megatron_mc.checkpoint.dist import load_dist_checkpoint, read_hf_config, save_dist_checkpoint
from megatron_mc.checkpoint.hf_export import save_hf_weights
from megatron_mc.checkpoint.hf_import import load_hf_weights
from megatron_mc.models.adapter import NON_ARCHITECTURE_KEYS
from megatron_mc.models.build import build_model
from megatron_mc.models.config import DTYPES, ModelConfig
from megatron_mc.models.registry import adapter_for_config, adapter_for_dir
from megatron_mc.parallel.config import ParallelConfig

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".safetensors.index.json", ".bin.index.json")


def checkpoint_dtype(hf_config: dict, requested: Optional[str]) -> str:
    """The dtype to hold weights in: as requested, else the checkpoint's own, so conversion is lossless."""
    dtype = requested or hf_config.get("torch_dtype") or hf_config.get("dtype") or "bfloat16"
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r} is not one of {list(DTYPES)}")
    return dtype


def hf_to_mcore(hf_dir: str, out_dir: str, par: ParallelConfig, dtype: Optional[str] = None) -> None:
    adapter = adapter_for_dir(hf_dir)  # architecture check before any weight is read
    cfg = ModelConfig(hf_dir=hf_dir, dtype=checkpoint_dtype(adapter.hf, dtype), transformer_impl="local")
    chunks = build_model(cfg, par, adapter)
    load_hf_weights(chunks, adapter, hf_dir, progress=True)
    save_dist_checkpoint(chunks, out_dir, adapter.hf)


def architecture_differences(saved: dict, given: dict) -> list[str]:
    keys = (set(saved) | set(given)) - NON_ARCHITECTURE_KEYS
    return sorted(k for k in keys if saved.get(k) != given.get(k))


def check_architecture(mcore_dir: str, hf_config_dir: str) -> dict:
    """The HF config saved with the checkpoint, after checking that `hf_config_dir`'s config.json
    describes the same architecture (cheap: run it before starting ranks)."""
    saved = read_hf_config(mcore_dir)
    differing = architecture_differences(saved, adapter_for_dir(hf_config_dir).hf)
    if differing:
        raise ValueError(
            f"{hf_config_dir}/config.json describes another architecture than the checkpoint {mcore_dir} "
            f"holds; differing keys: {differing}"
        )
    return saved


def mcore_to_hf(mcore_dir: str, hf_config_dir: str, out_dir: str, par: ParallelConfig,
                dtype: Optional[str] = None) -> None:
    saved = check_architecture(mcore_dir, hf_config_dir)
    adapter = adapter_for_config(saved, f"{mcore_dir}/hf_config.json")
    cfg = ModelConfig(hf_dir=hf_config_dir, dtype=checkpoint_dtype(saved, dtype), transformer_impl="local")
    chunks = build_model(cfg, par, adapter)
    load_dist_checkpoint(chunks, mcore_dir)
    save_hf_weights(chunks, adapter, out_dir, progress=True)
    if not dist.is_initialized() or dist.get_rank() == 0:
        copy_non_weight_files(hf_config_dir, out_dir)


def copy_non_weight_files(src: str, dst: str) -> None:
    """config.json, generation config and tokenizer files, never weights."""
    for path in Path(src).iterdir():
        if path.is_file() and not path.name.endswith(WEIGHT_SUFFIXES):
            shutil.copy2(path, Path(dst) / path.name)
