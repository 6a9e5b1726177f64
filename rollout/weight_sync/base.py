"""What every weight transport shares: the engines it feeds, and posting one request to all of them."""
from __future__ import annotations

import asyncio
from collections.abc import Iterable

import torch

from rollout.client import EngineRequestError, SGLangClient

Bucket = list[tuple[str, torch.Tensor]]


class WeightSync:
    """Push HF-named tensor buckets into every engine; `version` becomes the engines' weight_version."""

    def __init__(self, engine_urls: list[str], timeout_s: float = 1800.0):
        if not engine_urls:
            raise ValueError("weight sync needs at least one engine URL")
        self.clients = [SGLangClient(url, timeout_s=timeout_s, max_retries=0) for url in engine_urls]

    async def update(self, buckets: Iterable[Bucket], version: int) -> None:
        raise NotImplementedError

    def restart_source(self) -> str | None:
        """A checkpoint folder holding the weights of the last update, for engines that restart; None when
        the transport leaves none (the trainer must push again after a restart)."""
        return None

    async def begin_session(self) -> None:
        """SGLang 0.5.x loads tensor and distributed updates only inside a weight-update session
        (scheduler_components/weight_updater.py answers success=false outside one)."""
        await self.post_all("/begin_weight_update", {})

    async def end_session(self) -> None:
        await self.post_all("/end_weight_update", {})

    async def set_version(self, version: int) -> None:
        """Set once every bucket is in: a half-updated engine still reports the old version."""
        await self.post_all("/update_weight_version", {"new_version": str(version), "abort_all_requests": False})

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.clients))

    async def post_all(self, path: str, payload: dict) -> list:
        answers = await asyncio.gather(*(c.post(path, payload, retry=False) for c in self.clients))
        for client, answer in zip(self.clients, answers):
            if isinstance(answer, dict) and answer.get("success") is False:
                raise EngineRequestError(f"{client.base_url}{path} refused the update: {answer.get('message')}")
        return answers


def dtype_name(tensor: torch.Tensor) -> str:
    return str(tensor.dtype).removeprefix("torch.")
