"""In-memory wire form of a bucket of named tensors: safetensors bytes, base64-encoded for JSON.

The embedded engine's `/update_weights_from_tensor` takes this form in `serialized_named_tensors` (SGLang
itself takes its MultiprocessingSerializer form there, see weight_sync/ipc.py); no file is written on either
side. `decode_named_tensors` reads either form, so an engine can take what the trainer sends SGLang.
"""
from __future__ import annotations

import base64

import torch
from safetensors.torch import load, save

_SAFETENSORS_HEADER_START = 8  # a u64 header length, then the JSON header


def encode_named_tensors(named: list[tuple[str, torch.Tensor]]) -> str:
    names = [name for name, _ in named]
    if len(set(names)) != len(names):
        raise ValueError(f"a weight bucket names a tensor twice: {sorted(n for n in names if names.count(n) > 1)}")
    return base64.b64encode(save({name: t.detach().contiguous().cpu() for name, t in named})).decode("ascii")


def decode_named_tensors(text: str) -> list[tuple[str, torch.Tensor]]:
    """One serialized_named_tensors entry in either form: this module's safetensors bytes, or SGLang's
    MultiprocessingSerializer pickle (what the trainer sends SGLang, and the strict embedded engine that stands
    in for it), read with SGLang's own restricted unpickler. A pickle (protocol 4+) has its frame length where
    safetensors has the '{' opening its header."""
    raw = base64.b64decode(text)
    if raw[_SAFETENSORS_HEADER_START:_SAFETENSORS_HEADER_START + 1] == b"{":
        return list(load(raw).items())
    from sglang.srt.utils import MultiprocessingSerializer

    return list(MultiprocessingSerializer.deserialize(raw))
