"""Pushing the trainer's weights into the engines: each transport's options chosen here by
rollout.weight_sync, and the engines told which weights a restart must load."""
from __future__ import annotations

from typing import Any, Callable

from rollout.weight_sync import DiskWeightSync


def _disk(session) -> dict[str, Any]:
    return {"directory": str(session.weight_sync_dir), "reference_model_dir": str(session.start_model)}


def _tensor(session) -> dict[str, Any]:
    """SGLang's serialization for SGLang and for the strict embedded engine standing in for it (the rehearsal),
    which reads it too (rollout/tensor_bytes.py)."""
    rollout = session.cfg.rollout
    sglang_form = rollout.engine == "sglang" or rollout.embedded_strict
    return {"engine": "sglang" if sglang_form else "embedded", "tp_size": rollout.tp_size}


def _distributed(session) -> dict[str, Any]:
    """The group has the trainer's sender and every engine rank: SGLang joins with each of its TP ranks
    (rank_offset + tp_rank), the embedded engine with its one process."""
    sglang = session.cfg.rollout.engine == "sglang"
    return {"tp_size": session.cfg.rollout.tp_size if sglang else 1, "backend": "nccl" if sglang else "gloo"}


TRANSPORT_OPTIONS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "disk": _disk, "tensor": _tensor, "distributed": _distributed}


def sync_engine_weights(session, version: int, reform: bool = False) -> None:
    """Push the trainer's weights as `version`; `reform`: an engine restarted, so a distributed group is
    formed anew. Afterwards the engines know what a restart would load (disk: this version's folder;
    otherwise nothing, so a restarted engine leaves the router until it is pushed the newest weights)."""
    kind = session.cfg.rollout.weight_sync
    options = TRANSPORT_OPTIONS[kind](session)
    session.group.update_engine_weights(kind, session.fleet.engine_urls, version, reform=reform, **options)
    written = DiskWeightSync(session.fleet.engine_urls, **options).version_dir(version) if kind == "disk" else None
    session.fleet.note_weights(None if written is None else str(written), version)
