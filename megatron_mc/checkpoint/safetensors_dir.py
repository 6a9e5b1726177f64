"""Read the tensors of an HF checkpoint directory (model.safetensors or a sharded index) lazily."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open


class SafetensorsDir:
    def __init__(self, hf_dir: str):
        root = Path(hf_dir)
        index = root / "model.safetensors.index.json"
        if index.is_file():
            self.file_of = {k: root / v for k, v in json.loads(index.read_text())["weight_map"].items()}
        elif (root / "model.safetensors").is_file():
            with safe_open(root / "model.safetensors", "pt") as f:
                self.file_of = {k: root / "model.safetensors" for k in f.keys()}
        else:
            raise FileNotFoundError(f"{root}: neither model.safetensors nor model.safetensors.index.json")
        self._open = {}

    def __contains__(self, name: str) -> bool:
        return name in self.file_of

    def names(self) -> set[str]:
        return set(self.file_of)

    def get(self, name: str) -> torch.Tensor:
        path = self.file_of[name]
        if path not in self._open:
            self._open[path] = safe_open(path, "pt")
        return self._open[path].get_tensor(name)
