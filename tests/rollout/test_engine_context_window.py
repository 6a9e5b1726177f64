"""The engine accepts the YaRN-extended window the config asks for (issue 10, finding 7).

SGLang derives 40960 from Qwen3's config (max_position_embeddings; a YaRN factor is ignored when the scaling
names original_max_position_embeddings) and refuses --context-length 65536 unless
SGLANG_ALLOW_OVERWRITE_LONGER_CONTEXT_LEN=1. SGLang's ModelConfig cannot be built on this CPU machine (its
module imports the quantization layers and GPU kernels: tvm_ffi, sgl_kernel), so the checks are: the
variable reaches the server process EngineActor starts, and SGLang's own environment reader (sglang.srt.environ,
which _derive_context_length consults) reads it as set; a context beyond what the scaling covers is refused.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from rollout.config import RolloutConfig
from rollout.process import start_process
from rollout.sglang_engine import LONGER_CONTEXT_ENV, EngineActor, server_env

YARN_2X = {"rope_type": "yarn", "factor": 2.0, "original_max_position_embeddings": 32768}
SGLANG_READS_IT = "from sglang.srt.environ import envs; print(envs.SGLANG_ALLOW_OVERWRITE_LONGER_CONTEXT_LEN.get())"


def test_the_window_the_rope_scaling_covers_is_allowed_and_no_more():
    assert server_env(RolloutConfig(context_length=65536, rope_scaling=YARN_2X)) == {LONGER_CONTEXT_ENV: "1"}
    assert server_env(RolloutConfig(context_length=32768)) == {}
    assert server_env(RolloutConfig(rope_scaling=YARN_2X)) == {}
    with pytest.raises(ValueError, match="rollout.context_length 131072 is longer than .* = 65536"):
        server_env(RolloutConfig(context_length=131072, rope_scaling=YARN_2X))


@pytest.mark.skipif(importlib.util.find_spec("sglang") is None, reason="sglang is not installed")
def test_sglang_reads_the_switch_in_a_process_started_with_the_engine_env(tmp_path):
    outputs = {}
    for name, cfg in {"extended": RolloutConfig(context_length=65536, rope_scaling=YARN_2X),
                      "native": RolloutConfig(context_length=32768)}.items():
        log = tmp_path / f"{name}.log"
        assert start_process([sys.executable, "-c", SGLANG_READS_IT], log, env=server_env(cfg)).wait(60) == 0
        outputs[name] = log.read_text().split()[-1]
    assert outputs == {"extended": "True", "native": "False"}


def test_engine_actor_starts_its_server_with_the_switch(tiny_model_dir, tmp_path):
    cfg = RolloutConfig(engine="embedded", dtype="float32", context_length=65536, rope_scaling=YARN_2X,
                        engine_startup_timeout_s=120)
    actor = EngineActor(cfg, str(tiny_model_dir), 0, str(tmp_path), host="127.0.0.1")
    actor.start()
    try:
        environ = Path(f"/proc/{actor.info()['pid']}/environ").read_bytes().split(b"\0")
        assert f"{LONGER_CONTEXT_ENV}=1".encode() in environ
    finally:
        actor.stop()
