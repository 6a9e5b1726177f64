"""Issue 10, finding 3 (engine side): SGLang's release_memory_occupation asserts an idle scheduler and the
failed assert kills the server. A bare release under load kills a strict embedded engine the same way;
EngineActor.release_memory aborts what is outstanding and retries /flush_cache until the engine is idle
first, so it succeeds under the same load. Real server processes on loopback."""
from __future__ import annotations

from rollout.config import RolloutConfig
from rollout.process import stop_process
from rollout.sglang_contract import ALL_TAGS, STRICT_VIOLATION_EXIT_CODE
from rollout.sglang_engine import EngineActor
from tests.rollout.strict_server import Load, call, server_info, start_strict_server, strict_log_lines

PROMPT = {"input_ids": [10, 11, 12], "sampling_params": {"max_new_tokens": 4, "temperature": 0.0}}


def test_bare_release_under_load_kills_the_strict_server(tmp_path, tiny_model_dir):
    url, process, log_path = start_strict_server(tiny_model_dir, tmp_path)
    try:
        load = Load(url, count=4)
        status, body = call(url, "/release_memory_occupation", {})
        assert status == 500
        message = body["error"]["message"]
        assert message.startswith("strict SGLang contract: /release_memory_occupation with "), message
        assert "asserts it is idle" in message
        assert process.wait(timeout=10) == STRICT_VIOLATION_EXIT_CODE
        assert strict_log_lines(log_path)
        load.join()
    finally:
        stop_process(process)


def test_release_memory_aborts_and_flushes_first_under_load(tmp_path, tiny_model_dir):
    cfg = RolloutConfig(engine="embedded", dtype="float32", embedded_max_batch=2, embedded_strict=True)
    actor = EngineActor(cfg, str(tiny_model_dir), 0, str(tmp_path), host="127.0.0.1")
    url = actor.start()
    try:
        load = Load(url, count=4)
        actor.release_memory()
        answers = load.join()
        assert [status for status, _ in answers] == [200] * 4
        assert {body["meta_info"]["finish_reason"]["type"] for _, body in answers} == {"abort"}
        info = server_info(url)
        assert info["released"] == sorted(ALL_TAGS) and info["strict_violations"] == []
        assert actor._process.poll() is None and actor.info()["restarts"] == 0

        # SGLang's order back: weights (then the weight update), then the rest
        actor.resume_memory(["weights"])
        actor.resume_memory(["kv_cache", "cuda_graph"])
        status, body = call(url, "/generate", PROMPT)
        assert status == 200 and len(body["output_ids"]) == 4
        assert server_info(url)["released"] == []
    finally:
        actor.stop()
