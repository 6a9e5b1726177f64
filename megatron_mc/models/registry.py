"""Which adapter handles an HF checkpoint: chosen by config.json's model_type (or architectures)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from megatron_mc.models.adapter import ModelAdapter
from megatron_mc.models.llama import LlamaAdapter
from megatron_mc.models.qwen2 import Qwen2Adapter
from megatron_mc.models.qwen3 import Qwen3Adapter
from megatron_mc.models.qwen3_moe import Qwen3MoeAdapter

ADAPTERS: dict[str, type[ModelAdapter]] = {
    "qwen2": Qwen2Adapter,
    "qwen3": Qwen3Adapter,
    "llama": LlamaAdapter,
    "qwen3_moe": Qwen3MoeAdapter,
}


def adapter_for_config(hf_config: dict, source: str = "config.json", **kwargs) -> ModelAdapter:
    family = hf_config.get("model_type")
    if family not in ADAPTERS:
        by_arch = {a: f for f, cls in ADAPTERS.items() for a in cls.architectures}
        family = next((by_arch[a] for a in hf_config.get("architectures") or [] if a in by_arch), None)
    if family is None:
        raise ValueError(
            f"{source}: model_type={hf_config.get('model_type')!r} / architectures="
            f"{hf_config.get('architectures')} has no adapter; supported model types: {sorted(ADAPTERS)}"
        )
    return ADAPTERS[family](hf_config, source, **kwargs)


def adapter_for_dir(hf_dir: str, make_vocab_size_divisible_by: int = 128,
                    rope_override: Optional[dict] = None) -> ModelAdapter:
    path = Path(hf_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no config.json; point hf_dir at an HF checkpoint directory")
    return adapter_for_config(
        json.loads(path.read_text()), str(path),
        make_vocab_size_divisible_by=make_vocab_size_divisible_by, rope_override=rope_override,
    )
