"""The tensor (CUDA IPC) weight path on CPU (issue 10, finding 5), through SGLang's own serializer:
- the device a handle names: a train actor narrowed by Ray to one GPU calls it device 0; an engine that sees
  the node's GPUs would open its own device 0, another GPU (what SGLang's UUID patch repairs);
- payloads made in another process (a train rank) open in this one with SGLang's deserializer, and hold a
  copy: rewriting the bucket's buffer afterwards (iter_hf_buckets does, for the next bucket) leaves them intact;
- an engine's payloads come from the train ranks on its GPUs, which must share a node and not share GPUs;
- one process cannot make the payloads of several SGLang GPUs, and the embedded engine's form still reads;
- an engine (the embedded one, in a child process) takes SGLang's form over HTTP, and a refused bucket still
  closes SGLang's weight-update session, so the next update can open one.
The per-rank assembly from two train ranks into an engine is tests/trainer/test_pp_weight_sync.py."""
from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
import torch

from megatron_mc.trainer.engine_sync import check_colocated, colocated_ranks
from rollout.client import EngineRequestError, SGLangClient
from rollout.process import free_port
from rollout.tensor_bytes import decode_named_tensors, encode_named_tensors
from rollout.weight_sync import make_weight_sync
from rollout.weight_sync.ipc import visible_gpu
from rollout.weight_sync.tensor import TensorWeightSync

from conftest import hf_model

MAKE_PAYLOAD = """
import sys, torch
from rollout.weight_sync.ipc import sglang_payload
buffer = torch.arange(12, dtype=torch.float32)
bucket = [("model.norm.weight", buffer[:4]), ("model.embed_tokens.weight", buffer[4:].view(2, 4))]
payload, keep = sglang_payload(bucket)
buffer.fill_(-1.0)  # the next bucket's values, written into the same buffer
print(payload, flush=True)
sys.stdin.read()  # a train rank lives on while the engine reads
"""


def test_a_narrowed_device_index_names_another_gpu_on_the_engine():
    trainer_gpu = visible_gpu(0, "3")  # Ray gave the train actor GPU 3; torch calls it cuda:0
    assert trainer_gpu == "3"
    engine_visible = "0,1,2,3,4,5,6,7"
    assert visible_gpu(0, engine_visible) == "0" != trainer_gpu  # an index-only handle opens GPU 0 there
    assert visible_gpu(engine_visible.split(",").index(trainer_gpu), engine_visible) == trainer_gpu
    assert visible_gpu(0, "GPU-5d1c,GPU-77aa") == "GPU-5d1c"
    assert visible_gpu(2, None) == "2"
    assert visible_gpu(0, "") is None
    with pytest.raises(ValueError, match="CUDA device 1 does not exist under CUDA_VISIBLE_DEVICES='3'"):
        visible_gpu(1, "3")


@pytest.mark.slow  # two imports of sglang
@pytest.mark.distributed
def test_a_payload_made_by_another_process_opens_here_and_keeps_its_values():
    maker = subprocess.Popen([sys.executable, "-c", MAKE_PAYLOAD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    try:
        payload = maker.stdout.readline().strip()
        named = dict(decode_named_tensors(payload))
    finally:
        maker.stdin.close()
        maker.wait(timeout=30)
    assert torch.equal(named["model.norm.weight"], torch.arange(4, dtype=torch.float32))
    assert torch.equal(named["model.embed_tokens.weight"], torch.arange(4, 12, dtype=torch.float32).view(2, 4))


def test_the_embedded_form_still_decodes():
    bucket = [("a", torch.ones(2, 3)), ("b", torch.arange(5))]
    assert {n: t.tolist() for n, t in decode_named_tensors(encode_named_tensors(bucket))} == \
        {n: t.tolist() for n, t in bucket}


def test_each_engine_takes_payloads_from_the_train_ranks_on_its_gpus():
    assert colocated_ranks(engines=2, tp_size=2, world_size=4) == [[0, 1], [2, 3]]
    with pytest.raises(ValueError, match="3 engines of tp_size 2 need 6 GPUs shared with the trainer, which has 4"):
        colocated_ranks(engines=3, tp_size=2, world_size=4)
    one_node = [("127.0.0.2", "0"), ("127.0.0.2", "1"), ("127.0.0.2", "2"), ("127.0.0.2", "3")]
    check_colocated([[0, 1], [2, 3]], one_node)
    check_colocated([[0, 1]], [("127.0.0.2", None), ("127.0.0.2", None)])  # no GPUs: nothing to compare
    two_nodes = one_node[:2] + [("127.0.0.3", "0"), ("127.0.0.3", "1")]
    with pytest.raises(ValueError, match=r"engine 0's TP ranks .* nodes \['127.0.0.2', '127.0.0.3'\]; "
                                         "CUDA IPC cannot cross nodes"):
        check_colocated([[1, 2]], two_nodes)
    with pytest.raises(ValueError, match=r"train ranks \[0, 1\] .* share GPUs \['0', '0'\]"):
        check_colocated([[0, 1]], [("127.0.0.2", "0"), ("127.0.0.2", "0")])


def test_one_process_refuses_to_make_several_sglang_gpus_payloads():
    sync = TensorWeightSync(["http://127.0.0.1:9"], engine="sglang", tp_size=2)
    with pytest.raises(ValueError, match="into 2 engine GPUs: CUDA IPC handles must be made on each TP rank's"):
        asyncio.run(sync.update([[("a", torch.ones(1))]], version=1))
    asyncio.run(sync.close())


@pytest.mark.slow
@pytest.mark.distributed
def test_a_refused_bucket_closes_the_session_and_sglangs_form_loads(embedded_server, tiny_model_dir,
                                                                      other_tiny_model_dir):
    url = embedded_server(tiny_model_dir)
    new = hf_model(other_tiny_model_dir)
    buckets = [[(n, p.detach().clone()) for n, p in new.named_parameters()]]
    transports = {"tensor": {"engine": "sglang"},
                  "distributed": {"master_address": "127.0.0.1", "master_port": free_port(), "backend": "gloo"}}

    async def scenario():
        async with SGLangClient(url, max_retries=0) as client:
            for version, (kind, options) in enumerate(transports.items(), start=1):
                sync = make_weight_sync(kind, [url], **options)
                with pytest.raises(EngineRequestError, match="model.no_such_layer.weight.*not a parameter"):
                    await sync.update([[("model.no_such_layer.weight", torch.zeros(2, 2))]], version=99)
                await sync.update(buckets, version=version)
                await sync.close()
                assert (await client.get("/get_model_info"))["weight_version"] == str(version)

    asyncio.run(scenario())


def test_the_rehearsals_strict_engine_gets_sglangs_form_and_joins_a_group_as_one_rank():
    from types import SimpleNamespace

    from megatron_mc.driver.engine_weights import TRANSPORT_OPTIONS
    from rollout.config import RolloutConfig

    def options(kind: str, **rollout) -> dict:
        return TRANSPORT_OPTIONS[kind](SimpleNamespace(cfg=SimpleNamespace(rollout=RolloutConfig(**rollout))))

    assert options("tensor", engine="sglang", tp_size=2) == {"engine": "sglang", "tp_size": 2}
    assert options("tensor", engine="embedded", embedded_strict=True, tp_size=2) == {"engine": "sglang", "tp_size": 2}
    assert options("tensor", engine="embedded") == {"engine": "embedded", "tp_size": 1}
    assert options("distributed", engine="sglang", tp_size=4) == {"tp_size": 4, "backend": "nccl"}
    assert options("distributed", engine="embedded", embedded_strict=True, tp_size=4) == {"tp_size": 1,
                                                                                          "backend": "gloo"}
