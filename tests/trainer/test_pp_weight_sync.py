"""Weight sync from several train ranks, on real Megatron-Core (gloo), into an embedded engine whose weights
then equal the trainer's HF export, every tensor exactly.

Pipeline parallelism (issue 10, finding 6): a PP=2 TrainGroup pushes every stage's layers into a strict engine
through `distributed` (one gloo group per stage) and through `disk` (one version folder filled by both
stages); each tensor arrives once (a tied output layer as the first stage's embedding, an untied one from
the last stage), all before the version, which is set once.
Tensor sync (finding 5): two data-parallel ranks colocated with an engine of TP 2 each make their own
payload in SGLang's serialization and the engine's TP rank j gets the one made by train rank j.
The engine runs in this process so its weights can be read; it is the real server, on loopback HTTP. The
simulated node declares 2 GPUs as Ray resources (torch is the CPU build), so Ray narrows each rank's
CUDA_VISIBLE_DEVICES as on a cluster."""
from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import sys
import threading
from pathlib import Path

import pytest
import torch
from ray import cloudpickle
from safetensors.torch import load_file

from megatron_mc.data.tiny_default import TinyModelShape, prepare_tiny_default
from megatron_mc.trainer.batch import TrainBatch
from megatron_mc.trainer.group import TrainGroup
from rollout.embedded_engine import EmbeddedEngine
from rollout.embedded_server import EmbeddedServer
from rollout.process import free_port
from rollout.tensor_bytes import decode_named_tensors

from scenarios import rl_batch, run_config
from tests.support import simulated_ray_nodes

pytestmark = [pytest.mark.distributed, pytest.mark.slow]

NODE = "127.0.0.2"
cloudpickle.register_pickle_by_value(sys.modules[__name__])


class RecordingEngine(EmbeddedEngine):
    """The embedded engine, noting the names of every tensor it loads."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loaded: list[str] = []

    def load_named_tensors(self, named) -> int:
        named = list(named)
        self.loaded += [name for name, _ in named]
        return super().load_named_tensors(named)


class RecordingServer(EmbeddedServer):
    """The strict embedded server, noting each version it is told and the tensors loaded before it."""

    def __init__(self, engine: RecordingEngine):
        super().__init__(engine, strict=True)
        self.versions: list[tuple[str, list[str]]] = []

    async def update_weight_version(self, request):
        answer = await super().update_weight_version(request)
        self.versions.append((self.weight_version, list(self.engine.loaded)))
        self.engine.loaded.clear()
        return answer


class MakerRecordingServer(RecordingServer):
    """Notes which process made each serialized_named_tensors entry (SGLang's form names its shared memory
    after the maker), then takes the request as the server does."""

    def __init__(self, engine: RecordingEngine):
        super().__init__(engine)
        self.makers: list[list[int]] = []

    async def update_weights_from_tensor(self, request):
        payloads = (await request.json())["serialized_named_tensors"]
        self.makers.append([int(re.search(rb"/torch_(\d+)_", base64.b64decode(p)).group(1)) for p in payloads])
        rank_tensors = [dict(decode_named_tensors(p)) for p in payloads]
        assert all(t.keys() == rank_tensors[0].keys() and all(torch.equal(v, rank_tensors[0][n]) for n, v in t.items())
                   for t in rank_tensors)
        return await super().update_weights_from_tensor(request)


class InProcessEngine:
    def __init__(self, model_dir: Path, server_class=RecordingServer):
        from aiohttp import web

        self.server = server_class(RecordingEngine(str(model_dir), dtype="float32"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self.runner = web.AppRunner(self.server.app())
        self.loop.run_until_complete(self.runner.setup())
        self.loop.run_until_complete(web.TCPSite(self.runner, "127.0.0.1", self.port).start())
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def weights(self) -> dict[str, torch.Tensor]:
        return {name: p.detach().clone() for name, p in self.server.engine.model.named_parameters()}

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)


@pytest.fixture(scope="module")
def cluster():
    with simulated_ray_nodes({"num_cpus": 2, "num_gpus": 2}) as nodes:  # at NODE
        yield nodes


def exported(group: TrainGroup, out: Path) -> dict[str, torch.Tensor]:
    group.export_hf(str(out))
    tensors = {}
    for shard in sorted(out.glob("*.safetensors")):
        tensors.update(load_file(str(shard)))
    return tensors


def assert_engine_holds(engine: InProcessEngine, expected: dict[str, torch.Tensor]) -> None:
    weights = engine.weights()
    assert sorted(weights) == sorted(expected)
    for name, tensor in expected.items():
        assert torch.equal(weights[name], tensor), name


@pytest.mark.parametrize("tied", [True, False], ids=["tied_embeddings", "untied_lm_head"])
def test_pipeline_stages_sync_every_layer(cluster, tmp_path, tied):
    hf_dir = prepare_tiny_default(shape=TinyModelShape(tie_word_embeddings=tied)).hf_dir
    engine = InProcessEngine(hf_dir)
    group = TrainGroup(run_config(lr=1e-2, pp=2, world=2), str(hf_dir))
    try:
        prompt = rl_batch().prompt_ids[0]
        sft = TrainBatch.for_sft([prompt] * 2, [[7, 8, 9, 10, 11, 12]] * 2)
        start = engine.weights()

        group.train_sft(sft)
        # small buckets: each stage sends several through its own group
        group.update_engine_weights("distributed", [engine.url], 1, backend="gloo", bucket_bytes=64 << 10)
        after_first = exported(group, tmp_path / "export1")
        assert not torch.equal(after_first["model.norm.weight"], start["model.norm.weight"]), \
            "training must change the last stage's weights, or the check proves nothing"
        assert_engine_holds(engine, after_first)
        [(version, loaded)] = engine.server.versions  # set once, every tensor (each once) in before it
        assert version == "1" and sorted(loaded) == sorted(after_first)

        group.train_sft(sft)
        group.update_engine_weights("disk", [engine.url], 2, directory=str(tmp_path / "sync"),
                                    reference_model_dir=str(hf_dir), bucket_bytes=64 << 10)
        after_second = exported(group, tmp_path / "export2")
        assert_engine_holds(engine, after_second)
        assert engine.server.weight_version == "2"  # /update_weights_from_disk carries the version
        assert sorted(engine.server.engine.loaded) == sorted(after_second)
        version_dir = tmp_path / "sync" / "weights_v000002"
        index = json.loads((version_dir / "model.safetensors.index.json").read_text())
        assert sorted(index["weight_map"]) == sorted(after_second)
        assert {shard.split("-")[1] for shard in index["weight_map"].values()} == {"pp0", "pp1"}
        assert sorted(p.name for p in (tmp_path / "sync").iterdir()) == ["weights_v000002"]
        assert engine.server.violations == []

        # a failing stage source: every rank returns (none waits for the others' turns), the version stays
        with pytest.raises(Exception, match="has no config.json"):
            group.update_engine_weights("disk", [engine.url], 3, directory=str(tmp_path / "sync"),
                                        reference_model_dir=str(tmp_path))
        assert engine.server.weight_version == "2"
        assert_engine_holds(engine, after_second)
    finally:
        group.shutdown()
        engine.stop()


def test_each_engine_tp_rank_gets_the_payload_its_colocated_train_rank_made(cluster, tmp_path):
    import ray

    hf_dir = prepare_tiny_default().hf_dir
    engine = InProcessEngine(hf_dir, MakerRecordingServer)
    group = TrainGroup(run_config(lr=1e-2, world=2), str(hf_dir))
    try:
        pids = ray.get([actor.__ray_call__.remote(lambda actor: os.getpid()) for actor in group.actors])
        visible = ray.get([actor.__ray_call__.remote(lambda actor: os.environ["CUDA_VISIBLE_DEVICES"])
                           for actor in group.actors])
        assert sorted(visible) == ["0", "1"]  # Ray narrowed each rank to its (declared) GPU; engine_sync checks them
        prompt = rl_batch().prompt_ids[0]
        group.train_sft(TrainBatch.for_sft([prompt] * 2, [[7, 8, 9, 10, 11, 12]] * 2))
        group.update_engine_weights("tensor", [engine.url], 1, engine="sglang", tp_size=2, bucket_bytes=64 << 10)
        expected = exported(group, tmp_path / "export")
        assert_engine_holds(engine, expected)
        assert len(engine.server.makers) > 1, "several buckets"
        assert all(makers == pids for makers in engine.server.makers)
        [(version, loaded)] = engine.server.versions
        assert version == "1" and sorted(loaded) == sorted(2 * list(expected))  # each TP rank's entry, once
        assert engine.server.violations == []
    finally:
        group.shutdown()
        engine.stop()
