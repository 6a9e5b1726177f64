"""Weights through disk: buckets written as safetensors shards, engines call /update_weights_from_disk.

Works everywhere (any engine, any placement); the slowest transport. A version is written to a temporary
folder and renamed into place, so an engine never reads a half-written checkpoint. The reference
checkpoint's other files (config, tokenizer) are copied beside the weights, so each version folder is a
whole HF checkpoint that a restarted engine can start from. The newest `keep_versions` folders are kept.
"""
from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path

from safetensors.torch import save_file

from rollout.weight_sync.base import Bucket, WeightSync

WEIGHT_SUFFIXES = (".safetensors", ".safetensors.index.json", ".bin", ".pt")


class DiskWeightSync(WeightSync):
    def __init__(self, engine_urls: list[str], directory: str | Path, reference_model_dir: str | Path,
                 keep_versions: int = 2, **kwargs):
        super().__init__(engine_urls, **kwargs)
        self.directory = Path(directory)
        self.reference_model_dir = Path(reference_model_dir)
        if not (self.reference_model_dir / "config.json").exists():
            raise ValueError(f"disk weight sync: reference_model_dir {self.reference_model_dir} has no config.json; "
                             "pass the HF checkpoint the engines were started from")
        self.keep_versions = keep_versions
        self.last_path: Path | None = None

    def version_dir(self, version: int) -> Path:
        return self.directory / f"weights_v{version:06d}"

    def write(self, buckets: Iterable[Bucket], version: int) -> Path:
        final = self.version_dir(version)
        tmp = final.with_name(final.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        weight_map, total_size = {}, 0
        for index, bucket in enumerate(buckets):
            shard = f"model-{index + 1:05d}.safetensors"
            save_file({name: t.detach().contiguous().cpu() for name, t in bucket}, str(tmp / shard))
            weight_map.update({name: shard for name, _ in bucket})
            total_size += sum(t.numel() * t.element_size() for _, t in bucket)
        for path in self.reference_model_dir.iterdir():
            if path.is_file() and not path.name.endswith(WEIGHT_SUFFIXES):
                shutil.copy(path, tmp / path.name)
        # The sharded-checkpoint index: how HF from_pretrained (an engine restart) finds the shards.
        index = {"metadata": {"total_size": total_size}, "weight_map": weight_map}
        (tmp / "model.safetensors.index.json").write_text(json.dumps(index, indent=1))
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        return final

    async def update(self, buckets: Iterable[Bucket], version: int) -> None:
        path = self.write(buckets, version)
        await self.post_all("/update_weights_from_disk", update_from_disk_payload(str(path), version))
        self.last_path = path
        self._prune()

    def restart_source(self) -> str | None:
        return None if self.last_path is None else str(self.last_path)

    def _prune(self) -> None:
        versions = sorted(p for p in self.directory.glob("weights_v*") if not p.name.endswith(".tmp"))
        for old in versions[: -self.keep_versions]:
            shutil.rmtree(old, ignore_errors=True)


def update_from_disk_payload(model_path: str, version: int) -> dict:
    """sglang.srt.managers.io_struct.UpdateWeightFromDiskReqInput"""
    return {"model_path": model_path, "weight_version": str(version), "flush_cache": True,
            "abort_all_requests": False}
