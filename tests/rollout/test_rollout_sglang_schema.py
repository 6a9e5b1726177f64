"""Our requests and launch arguments, checked against SGLang's own classes.

SGLang is installed without dependencies (its kernels cannot be installed on CPU). ServerArgs imports as
is. io_struct imports schedule_batch, whose import chain needs torchvision and multimodal processors; when
that fails, schedule_batch alone is replaced by the five names io_struct takes from it (enums and a type
used only in multimodal fields) so the real GenerateReqInput, SamplingParams and weight-update structs are
what validates our payloads, through the same pydantic adapter SGLang's FastAPI server uses.
"""
from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import sys
import types

import pytest
import torch

from rollout.client import generate_payload
from rollout.config import RolloutConfig
from rollout.launch_args import sglang_server_args
from rollout.manager import RolloutManager
from rollout.weight_sync.disk import update_from_disk_payload
from rollout.weight_sync.distributed import init_group_payload, update_from_distributed_payload
from rollout.weight_sync.tensor import update_from_tensor_payload

SGLANG_INSTALL = ("pip install --no-deps sglang pybase64 msgspec pyzmq IPython traitlets triton "
                  "(never with dependencies: they replace torch)")
pytest.importorskip("sglang.srt.server_args", reason=f"sglang does not import; {SGLANG_INSTALL}")
pydantic = pytest.importorskip("pydantic")


def _schedule_batch_stand_in() -> types.ModuleType:
    module = types.ModuleType("sglang.srt.managers.schedule_batch")
    module.Modality = enum.Enum("Modality", "IMAGE VIDEO AUDIO")
    module.ReturnHiddenStatesMode = enum.Enum("ReturnHiddenStatesMode", "NONE")
    module.SamplingLogprobsMode = enum.Enum("SamplingLogprobsMode", "NONE")
    module.MultimodalProcessorOutput = object
    module.get_return_hidden_states_mode = lambda *args, **kwargs: module.ReturnHiddenStatesMode.NONE
    return module


@pytest.fixture(scope="module")
def io_struct():
    try:
        from sglang.srt.managers import io_struct
    except ImportError:
        saved = sys.modules.get("sglang.srt.managers.schedule_batch")
        sys.modules["sglang.srt.managers.schedule_batch"] = _schedule_batch_stand_in()
        try:
            from sglang.srt.managers import io_struct
        finally:
            if saved is not None:
                sys.modules["sglang.srt.managers.schedule_batch"] = saved
    return io_struct


def _validate(cls, payload: dict):
    """Validate as SGLang's HTTP server does, and refuse keys the class does not have (pydantic ignores them)."""
    fields = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set(cls.__struct_fields__)
    unknown = set(payload) - fields
    assert not unknown, f"{cls.__name__} has no fields {sorted(unknown)}"
    return pydantic.TypeAdapter(cls).validate_python(payload)


def test_generate_request_is_a_valid_generate_req_input(io_struct):
    from sglang.srt.sampling.sampling_params import SamplingParams

    cfg = RolloutConfig(top_p=0.95, top_k=50, max_new_tokens=64, stop_token_ids=[7, 9])
    params = RolloutManager(cfg, client=None, prompts=None).sampling_params(temperature=1.2)
    payload = generate_payload([5, 6, 7], params, rid="p1-0")
    request = _validate(io_struct.GenerateReqInput, payload)
    request.normalize_batch_and_arguments()
    assert request.is_single and request.rid == "p1-0" and request.return_logprob is True
    assert request.input_ids == [5, 6, 7]
    sampling = SamplingParams(**request.sampling_params)  # a msgspec Struct: unknown keys raise TypeError
    sampling.normalize(None)
    sampling.verify(vocab_size=100)
    assert (sampling.temperature, sampling.top_p, sampling.top_k) == (1.2, 0.95, 50)
    assert sampling.max_new_tokens == 64 and sampling.stop_token_ids == {7, 9}
    routed = _validate(io_struct.GenerateReqInput, generate_payload([5], params, "p1-1", return_routed_experts=True))
    assert routed.return_routed_experts is True and routed.routed_experts_start_len == 0  # the whole sequence


def test_our_checks_catch_a_misspelled_field(io_struct):
    from sglang.srt.sampling.sampling_params import SamplingParams

    with pytest.raises(AssertionError, match="return_logprobs"):
        _validate(io_struct.GenerateReqInput, {"input_ids": [1], "return_logprobs": True})
    with pytest.raises(TypeError):
        SamplingParams(max_tokens=5)


def test_weight_update_payloads_match_sglang_structs(io_struct):
    bucket = [("model.embed_tokens.weight", torch.zeros(4, 2, dtype=torch.bfloat16)),
              ("lm_head.weight", torch.zeros(4, 2))]
    disk = _validate(io_struct.UpdateWeightFromDiskReqInput, update_from_disk_payload("/ckpt/v3", 3))
    assert disk.model_path == "/ckpt/v3" and disk.weight_version == "3"
    tensor = _validate(io_struct.UpdateWeightsFromTensorReqInput, update_from_tensor_payload(["AAAA"], 4))
    assert tensor.weight_version == "4"
    group = _validate(io_struct.InitWeightsUpdateGroupReqInput, init_group_payload("10.0.0.1", 29600, 1, 3, "nccl", "g"))
    assert (group.rank_offset, group.world_size, group.backend) == (1, 3, "nccl")
    dist = _validate(io_struct.UpdateWeightsFromDistributedReqInput, update_from_distributed_payload(bucket, 5, "g"))
    assert dist.dtypes == ["bfloat16", "float32"] and dist.shapes == [[4, 2], [4, 2]]
    assert all(hasattr(torch, d) for d in dist.dtypes)  # SGLang resolves dtypes with getattr(torch, name)
    _validate(io_struct.UpdateWeightVersionReqInput, {"new_version": "5", "abort_all_requests": False})
    _validate(io_struct.PauseGenerationReqInput, {"mode": "abort"})
    _validate(io_struct.AbortReq, {"rid": "p1-0", "abort_all": False})


def test_launch_arguments_parse_with_sglang_server_args():
    from sglang.srt.server_args import ServerArgs

    rope = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}
    cfg = RolloutConfig(engine="sglang", tp_size=4, mem_fraction_static=0.7, context_length=131072,
                        dtype="bfloat16", rope_scaling=rope, placement="colocated")
    argv = sglang_server_args(cfg, "/models/qwen3-32b", "10.0.0.2", 30011, seed=7, base_gpu_id=4, weight_version="2")
    parser = argparse.ArgumentParser()
    ServerArgs.add_cli_args(parser)
    args = parser.parse_args(argv)  # an unknown or misspelled flag exits here
    assert args.model_path == "/models/qwen3-32b" and (args.host, args.port) == ("10.0.0.2", 30011)
    assert (args.tp_size, args.mem_fraction_static, args.context_length) == (4, 0.7, 131072)
    assert (args.dtype, args.random_seed, args.base_gpu_id) == ("bfloat16", 7, 4)
    assert args.enable_memory_saver and args.weight_version == "2"
    assert json.loads(args.json_model_override_args) == {"rope_scaling": rope}
    server_args = ServerArgs.from_cli_args(args)
    assert server_args.tp_size == 4 and server_args.context_length == 131072

    disaggregated = sglang_server_args(RolloutConfig(engine="sglang", placement="disaggregated"), "/m", "h", 1)
    assert not parser.parse_args(disaggregated).enable_memory_saver
    assert not args.enable_return_routed_experts
    assert parser.parse_args(sglang_server_args(cfg, "/m", "h", 1, routed_experts=True)).enable_return_routed_experts
