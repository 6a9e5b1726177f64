"""The collect stage: every configured source through its adapter (collect_sources/), ids made unique.

Two sources can use the same id (LiveCodeBench and TACO both number their problems): a repeated id gets
the source's label as a prefix ("taco/17"), and a number when that name is taken too ("taco/17#2", "taco/17#3",
...); an id repeated within one source is a rejection.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from megatron_mc.data.pipeline.collect_sources.base import AdapterResult, reject
from megatron_mc.data.pipeline.collect_sources.codeforces import collect_codeforces
from megatron_mc.data.pipeline.collect_sources.humaneval import collect_humaneval
from megatron_mc.data.pipeline.collect_sources.judge_loaders import collect_kattis, rows_adapter
from megatron_mc.data.pipeline.collect_sources.own_schema import collect_bundled, collect_jsonl, collect_tiny_tasks
from megatron_mc.data.pipeline.record import ProblemRecord, StageOutput

ADAPTERS = {
    "livecodebench": rows_adapter("livecodebench"),
    "taco": rows_adapter("taco"),
    "apps": rows_adapter("apps"),
    "codecontests": rows_adapter("codecontests"),
    "kattis": collect_kattis,
    "codeforces": collect_codeforces,
    "humaneval": collect_humaneval,
    "jsonl": collect_jsonl,
    "bundled": collect_bundled,
    "tiny_tasks": collect_tiny_tasks,
}
SourceKind = Literal["livecodebench", "taco", "apps", "codecontests", "kattis", "codeforces", "humaneval",
                     "jsonl", "bundled", "tiny_tasks"]


@dataclass
class SourceConfig:
    kind: SourceKind
    path: str | None = None     # file or folder; humaneval, bundled and tiny_tasks need none
    limit: int | None = None    # the first `limit` problems only
    name: str | None = None     # the records' `source` label; the kind when unset

    def __post_init__(self) -> None:
        if self.kind in ("livecodebench", "taco", "apps", "codecontests", "kattis", "codeforces", "jsonl") \
                and not self.path:
            raise ValueError(f"source kind {self.kind!r} needs a path")
        if self.limit is not None and self.limit < 0:
            raise ValueError(f"limit must be >= 0, got {self.limit}")

    @property
    def label(self) -> str:
        return self.name or self.kind


def _default_sources() -> list[SourceConfig]:
    return [SourceConfig("bundled"), SourceConfig("humaneval", limit=40), SourceConfig("tiny_tasks", limit=24)]


@dataclass
class CollectConfig:
    sources: list[SourceConfig] = field(default_factory=_default_sources)


def run_collect(cfg: CollectConfig, ctx) -> StageOutput:
    kept: list[ProblemRecord] = []
    rejected = []
    seen: set[str] = set()
    per_source: dict[str, int] = {}
    for source in ctx.progress(cfg.sources, total=len(cfg.sources), desc="collect"):
        result: AdapterResult = ADAPTERS[source.kind](source)
        rejected += result.rejected
        own_ids: set[str] = set()
        for record in result.records:
            if record.id in own_ids:
                rejected.append(reject(record.id, "duplicate_id", f"source {source.label!r} repeats this id"))
                continue
            own_ids.add(record.id)
            if record.id in seen:
                record.problem = dataclasses.replace(record.problem, id=_free_id(f"{source.label}/{record.id}", seen))
            seen.add(record.id)
            kept.append(record)
        per_source[source.label] = len(result.records)
        ctx.log(f"collect: {source.label}: {len(result.records)} problems, {len(result.rejected)} rejected")
    return StageOutput(kept, rejected, {"per_source": per_source})


def _free_id(name: str, seen: set[str]) -> str:
    """`name`, or `name#2`, `name#3`, ...: the first one no record collected so far has."""
    candidate, n = name, 1
    while candidate in seen:
        n += 1
        candidate = f"{name}#{n}"
    return candidate
