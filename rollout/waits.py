"""Deadlines for everything the driver waits on in Ray: actors being scheduled, placement groups, engines
starting, collectives. A wait that runs out raises DeadlineExceeded naming what is still pending (which
actor, which bundle, which node), instead of hanging a cluster job until its time limit."""
from __future__ import annotations

import time
from collections.abc import Sequence

DEFAULT_TIMEOUT_S = 600.0


class DeadlineExceeded(TimeoutError):
    """A wait ran out; the message names what never finished."""


def get_within(refs: Sequence, timeout_s: float, names: Sequence[str], what: str) -> list:
    """ray.get(refs) within timeout_s; names[i] says what refs[i] is (e.g. "train rank 3 on bundle 3,
    node 127.0.0.3"). An error raised by a task propagates at once."""
    import ray

    if len(refs) != len(names):
        raise ValueError("get_within: one name per reference")
    refs = list(refs)
    deadline = time.monotonic() + timeout_s
    pending = list(refs)
    while pending:
        left = deadline - time.monotonic()
        if left <= 0:
            waiting = [names[refs.index(r)] for r in pending]
            raise DeadlineExceeded(f"{what}: {len(waiting)} of {len(refs)} still pending after {timeout_s:.0f} s: "
                                   + "; ".join(waiting))
        ready, pending = ray.wait(pending, num_returns=len(pending), timeout=min(left, 5.0))
        for ref in ready:
            ray.get(ref)  # raises the task's own error now, not after the others finish
    return ray.get(refs)


def placement_group_ready(group, timeout_s: float, what: str) -> None:
    """Wait for a placement group; when it cannot be placed, name its bundles and what the cluster has."""
    import ray

    try:
        ray.get(group.ready(), timeout=timeout_s)
    except ray.exceptions.GetTimeoutError:
        available = {k: v for k, v in ray.available_resources().items() if not k.startswith("node:")}
        raise DeadlineExceeded(
            f"{what}: placement group of {len(group.bundle_specs)} bundles {group.bundle_specs} not placed "
            f"after {timeout_s:.0f} s; the cluster has {available} free "
            f"(nodes: {', '.join(n['NodeManagerAddress'] for n in ray.nodes() if n['Alive'])})") from None
