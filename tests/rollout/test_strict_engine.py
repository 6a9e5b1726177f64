"""The embedded server's strict SGLang mode (--strict-sglang) refuses what SGLang 0.5.x would fail on, as
SGLang would: calls that kill SGLang answer 500 "strict SGLang contract: ..." and the server exits with
STRICT_VIOLATION_EXIT_CODE; /flush_cache fails unless idle; an unpaused weight update waits for running
requests (the model-update lock); tensor and distributed updates need a weight-update session; paths SGLang
lacks are 404; memory is tracked per tag; several named weight-update groups load their own tensors.
Real server processes on loopback, the tiny model of conftest.py."""
from __future__ import annotations

import threading
import time

import pytest
import torch

from rollout.process import free_port, stop_process
from rollout.sglang_contract import STRICT_VIOLATION_EXIT_CODE
from rollout.tensor_bytes import encode_named_tensors
from rollout.weight_sync.process_group import StandaloneGroup
from tests.rollout.conftest import hf_model
from tests.rollout.strict_server import (
    Load,
    call,
    default_env_without_health_switch,
    exit_code,
    server_info,
    start_strict_server,
    strict_log_lines,
)

GREEDY = {"max_new_tokens": 6, "temperature": 0.0}
PROMPT = [10, 11, 12, 13]


@pytest.fixture
def servers(tmp_path):
    started = []

    def start(model_dir, **kwargs):
        url, process, log_path = start_strict_server(model_dir, tmp_path, **kwargs)
        started.append(process)
        return url, process, log_path

    yield start
    for process in started:
        stop_process(process)


def greedy_ids(url: str) -> list[int]:
    status, body = call(url, "/generate", {"input_ids": PROMPT, "sampling_params": GREEDY})
    assert status == 200, body
    return body["output_ids"]


def hf_greedy_ids(model_dir) -> list[int]:
    model = hf_model(model_dir)
    with torch.no_grad():
        out = model.generate(torch.tensor([PROMPT]), max_new_tokens=GREEDY["max_new_tokens"], do_sample=False)
    return out[0, len(PROMPT):].tolist()


def assert_died_for(process, log_path, body, *fragments: str) -> None:
    message = body["error"]["message"]
    assert message.startswith("strict SGLang contract: "), message
    for fragment in fragments:
        assert fragment in message, message
    assert exit_code(process) == STRICT_VIOLATION_EXIT_CODE
    assert any(message in line for line in strict_log_lines(log_path))


def test_generate_while_memory_released_kills_the_server(servers, tiny_model_dir):
    url, process, log_path = servers(tiny_model_dir)
    assert call(url, "/release_memory_occupation", {"tags": ["kv_cache"]})[0] == 200
    assert server_info(url)["released"] == ["kv_cache"]
    status, body = call(url, "/generate", {"input_ids": PROMPT, "sampling_params": GREEDY})
    assert status == 500
    assert_died_for(process, log_path, body, "/generate while ['kv_cache'] released", "illegal memory access")


def test_weight_update_into_released_weights_kills_the_server(servers, tiny_model_dir, other_tiny_model_dir):
    url, process, log_path = servers(tiny_model_dir)
    assert call(url, "/release_memory_occupation", {})[0] == 200
    assert call(url, "/resume_memory_occupation", {"tags": ["kv_cache", "cuda_graph"]})[0] == 200
    assert server_info(url)["released"] == ["weights"]
    status, body = call(url, "/update_weights_from_disk", {"model_path": str(other_tiny_model_dir)})
    assert status == 500
    assert_died_for(process, log_path, body, "/update_weights_from_disk while the weights are released")


def test_resuming_a_tag_that_is_not_released_kills_the_server(servers, tiny_model_dir):
    """The order slime uses (weights, then cuda_graph and kv_cache) works; resuming all again does not."""
    url, process, log_path = servers(tiny_model_dir)
    assert call(url, "/release_memory_occupation", {"tags": None})[0] == 200
    assert call(url, "/resume_memory_occupation", {"tags": ["weights"]})[0] == 200
    assert call(url, "/resume_memory_occupation", {"tags": ["cuda_graph", "kv_cache"]})[0] == 200
    assert greedy_ids(url)
    status, body = call(url, "/resume_memory_occupation", {})
    assert status == 500
    assert_died_for(process, log_path, body, "not released", "offload_tags.remove")


@pytest.mark.slow
def test_health_generation_runs_unless_switched_off(servers, tiny_model_dir):
    """SGLang's /health generates a token on an idle engine unless SGLANG_ENABLE_HEALTH_ENDPOINT_GENERATION=0
    (which engine processes get): on released memory that generation kills the server."""
    quiet_url, quiet, _ = servers(tiny_model_dir)
    served = server_info(quiet_url)["served"]
    assert call(quiet_url, "/release_memory_occupation", {})[0] == 200
    assert call(quiet_url, "/health", method="GET")[0] == 200
    assert server_info(quiet_url)["served"] == served and quiet.poll() is None

    url, process, log_path = servers(tiny_model_dir, env=default_env_without_health_switch())
    served = server_info(url)["served"]
    assert call(url, "/health", method="GET")[0] == 200
    assert server_info(url)["served"] == served + 1
    assert call(url, "/release_memory_occupation", {})[0] == 200
    status, body = call(url, "/health", method="GET")
    assert status == 500
    assert_died_for(process, log_path, body, "a health-check generation while")


@pytest.mark.slow
def test_flush_paths_pause_and_the_model_update_lock(servers, tiny_model_dir, other_tiny_model_dir):
    url, process, _ = servers(tiny_model_dir)
    # paths SGLang's http_server does not have
    for path in ("/abort", "/update_weights", "/release_memory"):
        assert call(url, path, {})[0] == 404, path

    # /flush_cache fails while requests run (SGLang's 400 and body), succeeds once idle
    load = Load(url, count=3)
    assert call(url, "/flush_cache", {}) == (400, "Flush cache failed.\n")

    # an unpaused weight update waits for the running requests (SGLang's model-update lock) ...
    finished = {}
    update = threading.Thread(target=lambda: finished.update(
        update=(call(url, "/update_weights_from_disk", {"model_path": str(other_tiny_model_dir),
                                                        "weight_version": "1"}), time.monotonic())))
    update.start()
    answers = load.join()
    done = time.monotonic()
    update.join(60)
    (status, body), updated_at = finished["update"]
    assert status == 200 and body["success"], body
    # ... so every request of the load finished with the old weights, before the update did
    assert [a[0] for a in answers] == [200] * 3
    assert {a[1]["meta_info"]["weight_version"] for a in answers} == {"0"}
    assert updated_at >= done - 0.5
    assert call(url, "/flush_cache", {})[0] == 200
    assert greedy_ids(url) == hf_greedy_ids(other_tiny_model_dir)

    # while paused a request waits before the scheduler: the cache flushes, the request runs after continue
    assert call(url, "/pause_generation", {"mode": "abort"})[0] == 200
    waiting = {}
    thread = threading.Thread(target=lambda: waiting.update(answer=call(url, "/generate", {
        "input_ids": PROMPT, "sampling_params": GREEDY})))
    thread.start()
    time.sleep(0.3)
    assert server_info(url)["queued"] == 0 and "answer" not in waiting
    assert call(url, "/flush_cache", {})[0] == 200
    assert call(url, "/continue_generation", {})[0] == 200
    thread.join(60)
    assert waiting["answer"][0] == 200
    assert process.poll() is None


def test_tensor_and_distributed_updates_need_a_session(servers, tiny_model_dir, other_tiny_model_dir):
    url, process, _ = servers(tiny_model_dir)
    named = [(n, p.detach()) for n, p in hf_model(other_tiny_model_dir).named_parameters()]
    payload = {"serialized_named_tensors": [encode_named_tensors(named)], "flush_cache": True}
    status, body = call(url, "/update_weights_from_tensor", payload)
    assert status == 400 and not body["success"]
    assert body["message"].startswith("strict SGLang contract: /update_weights_from_tensor outside a weight-update "
                                      "session"), body
    assert call(url, "/end_weight_update", {})[0] == 400
    assert call(url, "/begin_weight_update", {})[0] == 200
    assert call(url, "/begin_weight_update", {})[0] == 400
    assert call(url, "/update_weights_from_tensor", payload)[0] == 200
    assert call(url, "/end_weight_update", {})[0] == 200
    assert greedy_ids(url) == hf_greedy_ids(other_tiny_model_dir)
    assert process.poll() is None and server_info(url)["strict_violations"]


@pytest.mark.distributed
def test_several_named_weight_update_groups(servers, tiny_model_dir, other_tiny_model_dir):
    """A pipeline-parallel trainer forms one group per stage; each stage sends its own layers."""
    url, _, _ = servers(tiny_model_dir)
    named = [(n, p.detach()) for n, p in hf_model(other_tiny_model_dir).named_parameters()]
    stages = {"stage_0": named[: len(named) // 2], "stage_1": named[len(named) // 2:]}
    ports = {name: free_port() for name in stages}
    senders, joins = {}, []
    for name in stages:
        joins.append(threading.Thread(target=lambda name=name: call(url, "/init_weights_update_group", {
            "master_address": "127.0.0.1", "master_port": ports[name], "rank_offset": 1, "world_size": 2,
            "group_name": name, "backend": "gloo"})))
        joins[-1].start()
        senders[name] = StandaloneGroup("gloo", "127.0.0.1", ports[name], 0, 2, group_name=name)
    for thread in joins:
        thread.join(60)
    assert call(url, "/begin_weight_update", {})[0] == 200
    answers = {}

    def send(name: str) -> None:
        bucket = stages[name]
        announce = threading.Thread(target=lambda: answers.update({name: call(url, "/update_weights_from_distributed", {
            "names": [n for n, _ in bucket], "dtypes": ["float32"] * len(bucket),
            "shapes": [list(t.shape) for _, t in bucket], "group_name": name})}))
        announce.start()
        senders[name].send([t for _, t in bucket])
        announce.join(60)

    stage_threads = [threading.Thread(target=send, args=(name,)) for name in stages]
    for thread in stage_threads:
        thread.start()
    for thread in stage_threads:
        thread.join(120)
    assert {name: answer[0] for name, answer in answers.items()} == {"stage_0": 200, "stage_1": 200}, answers
    assert call(url, "/end_weight_update", {})[0] == 200
    assert greedy_ids(url) == hf_greedy_ids(other_tiny_model_dir)
    status, body = call(url, "/update_weights_from_distributed", {"names": [], "dtypes": [], "shapes": [],
                                                                  "group_name": "stage_2"})
    assert status == 400 and "'stage_2' is not formed" in body["error"]["message"]
