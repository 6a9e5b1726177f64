"""In-memory wire form of a bucket of named tensors: safetensors bytes, base64-encoded for JSON.

The embedded engine's `/update_weights_from_tensor` takes this form in `serialized_named_tensors` (SGLang
itself takes CUDA IPC handles there, see weight_sync/tensor.py); no file is written on either side.
"""
from __future__ import annotations

import base64

import torch
from safetensors.torch import load, save


def encode_named_tensors(named: list[tuple[str, torch.Tensor]]) -> str:
    names = [name for name, _ in named]
    if len(set(names)) != len(names):
        raise ValueError(f"a weight bucket names a tensor twice: {sorted(n for n in names if names.count(n) > 1)}")
    return base64.b64encode(save({name: t.detach().contiguous().cpu() for name, t in named})).decode("ascii")


def decode_named_tensors(text: str) -> list[tuple[str, torch.Tensor]]:
    return list(load(base64.b64decode(text)).items())
