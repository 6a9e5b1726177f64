"""Issue 10, finding 3 (engine side): SGLang's release_memory_occupation asserts an idle scheduler and the
failed assert kills the server. A bare release under load kills a strict embedded engine the same way;
EngineActor.release_memory aborts what is outstanding and retries /flush_cache until the engine is idle
first, so it succeeds under the same load. Real server processes on loopback."""
from __future__ import annotations

import pytest

from rollout.config import RolloutConfig
from rollout.process import stop_process
from rollout.sglang_contract import ALL_TAGS, STRICT_VIOLATION_EXIT_CODE
from rollout.sglang_engine import EngineActor
from tests.rollout.strict_server import Load, call, server_info, start_strict_server, strict_log_lines
from rollout.local_ray import init_local_ray

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


@pytest.mark.slow
@pytest.mark.distributed
def test_engine_phases_in_the_gpu_ledger(tmp_path, tiny_model_dir):
    """An engine on a Ray GPU share books its phases: serving once started, released after a release,
    weights, then serving. KV
    cache back while a train rank is still resident overflows the GPU, and the ledger names it."""
    import ray

    from rollout.gpu_ledger import GIB, GpuMemoryExceeded, start_ledger

    init_local_ray(num_cpus=2, num_gpus=1, logging_level="ERROR")
    try:
        ledger = start_ledger(10 * GIB, {"engine": {"serving": 8 * GIB, "weights": 3 * GIB, "released": 0.5 * GIB},
                                         "train": {"resident": 6 * GIB}})
        cfg = RolloutConfig(engine="embedded", dtype="float32", embedded_max_batch=2, embedded_strict=True)
        actor = ray.remote(EngineActor).options(num_cpus=0, num_gpus=0.2).remote(
            cfg, str(tiny_model_dir), 0, str(tmp_path), host="127.0.0.1")
        ray.get(actor.start.remote(), timeout=120)
        ray.get(actor.release_memory.remote(), timeout=120)
        gpu = (ray.util.get_node_ip_address(), 0)
        ray.get(ledger.book.remote("train rank 0", "train", "resident", [gpu]))
        ray.get(actor.resume_memory.remote(["weights"]), timeout=60)
        with pytest.raises(GpuMemoryExceeded, match="when engine 0 enters phase 'serving'"):
            ray.get(actor.resume_memory.remote(["kv_cache", "cuda_graph"]), timeout=60)
        history = ray.get(ledger.report.remote())["history"]
        assert history[:4] == ["engine 0 -> serving", "engine 0 -> released", "train rank 0 -> resident",
                               "engine 0 -> weights"]
        ray.get(actor.stop.remote(), timeout=60)
    finally:
        ray.shutdown()
