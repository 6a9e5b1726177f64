"""Weights through disk: buckets written as safetensors shards, engines call /update_weights_from_disk.

Works everywhere (any engine, any placement); the slowest transport. A version is written to a temporary
folder and renamed into place, so an engine never reads a half-written checkpoint. The newest
`keep_versions` folders are kept (a restarted engine loads the newest).
"""
from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from safetensors.torch import save_file

from rollout.weight_sync.base import Bucket, WeightSync

CONFIG_FILES = ("config.json", "generation_config.json")


class DiskWeightSync(WeightSync):
    def __init__(self, engine_urls: list[str], directory: str | Path, reference_model_dir: str | Path | None = None,
                 keep_versions: int = 2, **kwargs):
        super().__init__(engine_urls, **kwargs)
        self.directory = Path(directory)
        self.reference_model_dir = Path(reference_model_dir) if reference_model_dir else None
        self.keep_versions = keep_versions
        self.last_path: Path | None = None

    def version_dir(self, version: int) -> Path:
        return self.directory / f"weights_v{version:06d}"

    def write(self, buckets: Iterable[Bucket], version: int) -> Path:
        final = self.version_dir(version)
        tmp = final.with_name(final.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for index, bucket in enumerate(buckets):
            save_file({name: t.detach().contiguous().cpu() for name, t in bucket},
                      str(tmp / f"model-{index:05d}.safetensors"))
        if self.reference_model_dir is not None:  # SGLang re-reads the HF config next to the weights
            for name in CONFIG_FILES:
                if (self.reference_model_dir / name).exists():
                    shutil.copy(self.reference_model_dir / name, tmp / name)
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        return final

    async def update(self, buckets: Iterable[Bucket], version: int) -> None:
        path = self.write(buckets, version)
        await self.post_all("/update_weights_from_disk", update_from_disk_payload(str(path), version))
        self.last_path = path
        self._prune()

    def _prune(self) -> None:
        versions = sorted(p for p in self.directory.glob("weights_v*") if not p.name.endswith(".tmp"))
        for old in versions[: -self.keep_versions]:
            shutil.rmtree(old, ignore_errors=True)


def update_from_disk_payload(model_path: str, version: int) -> dict:
    """sglang.srt.managers.io_struct.UpdateWeightFromDiskReqInput"""
    return {"model_path": model_path, "weight_version": str(version), "flush_cache": True,
            "abort_all_requests": False}
