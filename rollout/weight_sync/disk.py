"""Weights through disk: buckets written as safetensors shards, engines call /update_weights_from_disk.

Works everywhere (any engine, any placement); the slowest transport. A version is written to a temporary
folder and renamed into place, so an engine never reads a half-written checkpoint. Several writers may fill
one version (the source rank of each pipeline stage, on a file system they and the engines share): each
writes its own part (distinct shard names and a part index), and `publish` merges the parts' weight maps
into the checkpoint's index. The reference checkpoint's other files (config, tokenizer) are copied beside the
weights, so each version folder is a whole HF checkpoint that a restarted engine can start from. The newest
`keep_versions` folders are kept.
"""
from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path

from safetensors.torch import save_file

from rollout.weight_sync.base import Bucket, WeightSync

WEIGHT_SUFFIXES = (".safetensors", ".safetensors.index.json", ".bin", ".pt")
INDEX = "model.safetensors.index.json"
PART_INDEX_SUFFIX = ".part.json"


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

    def staging_dir(self, version: int) -> Path:
        final = self.version_dir(version)
        return final.with_name(final.name + ".tmp")

    def prepare(self, version: int) -> None:
        """An empty staging folder for `version`; call once, before any part is written."""
        tmp = self.staging_dir(version)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)

    def write_part(self, buckets: Iterable[Bucket], version: int, part: str = "") -> None:
        """This writer's shards (`model-{part}00001.safetensors`, ...) and its part index."""
        tmp = self.staging_dir(version)
        weight_map, total_size = {}, 0
        for index, bucket in enumerate(buckets):
            shard = f"model-{part}{index + 1:05d}.safetensors"
            save_file({name: t.detach().contiguous().cpu() for name, t in bucket}, str(tmp / shard))
            weight_map.update({name: shard for name, _ in bucket})
            total_size += sum(t.numel() * t.element_size() for _, t in bucket)
        part_index = tmp / f".model-{part}{PART_INDEX_SUFFIX}"
        part_index.write_text(json.dumps({"total_size": total_size, "weight_map": weight_map}))

    def publish(self, version: int) -> Path:
        """Merge the parts' indexes into the checkpoint's, copy the reference's other files, rename into
        place. Every part must be written."""
        tmp = self.staging_dir(version)
        weight_map, total_size = {}, 0
        for path in sorted(tmp.glob(f".model-*{PART_INDEX_SUFFIX}")):
            part = json.loads(path.read_text())
            twice = sorted(set(weight_map) & set(part["weight_map"]))
            if twice:
                raise ValueError(f"disk weight sync: {twice[:5]} written by two parts of {tmp} "
                                 f"({weight_map[twice[0]]} and {part['weight_map'][twice[0]]}); each tensor "
                                 "belongs to one pipeline stage")
            weight_map.update(part["weight_map"])
            total_size += part["total_size"]
            path.unlink()
        if not weight_map:
            raise ValueError(f"disk weight sync: no part was written to {tmp}")
        for path in self.reference_model_dir.iterdir():
            if path.is_file() and not path.name.endswith(WEIGHT_SUFFIXES):
                shutil.copy(path, tmp / path.name)
        # The sharded-checkpoint index: how HF from_pretrained (an engine restart) finds the shards.
        index = {"metadata": {"total_size": total_size}, "weight_map": dict(sorted(weight_map.items()))}
        (tmp / INDEX).write_text(json.dumps(index, indent=1))
        final = self.version_dir(version)
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        return final

    def write(self, buckets: Iterable[Bucket], version: int) -> Path:
        self.prepare(version)
        self.write_part(buckets, version)
        return self.publish(version)

    async def load(self, path: Path, version: int) -> None:
        """The engines load the published version."""
        await self.post_all("/update_weights_from_disk", update_from_disk_payload(str(path), version))
        self.last_path = path
        self._prune()

    async def update(self, buckets: Iterable[Bucket], version: int) -> None:
        await self.load(self.write(buckets, version), version)

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
