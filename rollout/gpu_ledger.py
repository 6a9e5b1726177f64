"""A simulated GPU memory ledger for rehearsals (megatron_mc.rehearsal): each train rank and engine books
what the planner says it holds on each of its GPUs in each phase (resident, offloaded, released, ...), and
a booking that takes a GPU over its capacity fails, naming the GPU, the phase and every holder there.

The ledger is a named Ray actor that only a rehearsal starts; `book` is a no-op without it, so the same
calls stay in the cluster code path at no cost.
"""
from __future__ import annotations

import os

LEDGER_NAME = "mc_gpu_ledger"
# A fixed namespace: the rehearsal starts the ledger from its own Ray job, the mc-train runs it launches
# (and kills and resumes) are other jobs, and named actors are otherwise visible only in their own job.
LEDGER_NAMESPACE = "megatron_mc_rehearsal"
GIB = 1024 ** 3

GpuId = tuple[str, int]  # (node address, GPU index on the node)


class GpuMemoryExceeded(RuntimeError):
    pass


class GpuLedger:
    """holder kinds ("train", "engine") x phases -> bytes per GPU, from the planner; capacity per GPU."""

    def __init__(self, capacity_bytes: float, phase_bytes: dict[str, dict[str, float]]):
        self.capacity = capacity_bytes
        self.phase_bytes = phase_bytes
        self.bookings: dict[GpuId, dict[str, tuple[str, float]]] = {}
        self.peaks: dict[GpuId, float] = {}
        self.history: list[str] = []

    def book(self, holder: str, kind: str, phase: str, gpus: list[GpuId]) -> None:
        if kind not in self.phase_bytes or phase not in self.phase_bytes[kind]:
            raise ValueError(f"GPU ledger: no planned size for {kind!r} in phase {phase!r}; "
                             f"known: { {k: sorted(v) for k, v in self.phase_bytes.items()} }")
        size = self.phase_bytes[kind][phase]
        for gpu in gpus:
            self.bookings.setdefault(tuple(gpu), {})[holder] = (phase, size)
        self.history.append(f"{holder} -> {phase}")
        for gpu in gpus:
            held = self.bookings[tuple(gpu)]
            total = sum(b for _, b in held.values())
            self.peaks[tuple(gpu)] = max(self.peaks.get(tuple(gpu), 0.0), total)
            if total > self.capacity:
                parts = ", ".join(f"{h} {p} {b / GIB:.1f} GiB" for h, (p, b) in sorted(held.items()))
                raise GpuMemoryExceeded(
                    f"GPU {gpu[1]} of node {gpu[0]} would hold {total / GIB:.1f} GiB of "
                    f"{self.capacity / GIB:.0f} GiB when {holder} enters phase {phase!r}: {parts}")

    def clear(self) -> None:
        """Every holder gone (their processes ended): what they booked is free again; peaks are kept."""
        self.bookings.clear()
        self.history.append("all holders gone")

    def release(self, holder: str) -> None:
        for held in self.bookings.values():
            held.pop(holder, None)

    def report(self) -> dict:
        return {"capacity_gib": self.capacity / GIB,
                "peak_gib": {f"{n}:{g}": p / GIB for (n, g), p in sorted(self.peaks.items())},
                "history": list(self.history)}


def start_ledger(capacity_bytes: float, phase_bytes: dict[str, dict[str, float]]):
    import ray

    return ray.remote(GpuLedger).options(name=LEDGER_NAME, namespace=LEDGER_NAMESPACE, num_cpus=0).remote(
        capacity_bytes, phase_bytes)


def _ledger():
    import ray

    if not ray.is_initialized():
        return None
    try:
        return ray.get_actor(LEDGER_NAME, namespace=LEDGER_NAMESPACE)
    except ValueError:
        return None


def book(holder: str, kind: str, phase: str, gpus: list[GpuId]) -> None:
    """Record that `holder` now holds its `phase` share on `gpus`; raises GpuMemoryExceeded (the rehearsal
    fails) when a GPU goes over capacity. No-op outside a rehearsal (and without Ray: no GPUs to book)."""
    if not gpus:
        return
    ledger = _ledger()
    if ledger is None:
        return
    import ray

    ray.get(ledger.book.remote(holder, kind, phase, [tuple(g) for g in gpus]))


def my_gpus(count: int = 1, base: int | None = None) -> list[GpuId]:
    """The (node, GPU) pairs of the calling Ray actor: Ray's assigned GPU ids, or `count` GPUs from `base`
    (an engine that sees its whole node's GPUs and starts at --base-gpu-id)."""
    import ray

    node = ray.util.get_node_ip_address()
    if base is not None:
        return [(node, base + i) for i in range(count)]
    ids = ray.get_gpu_ids() or [int(i) for i in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if i]
    return [(node, int(i)) for i in ids]
