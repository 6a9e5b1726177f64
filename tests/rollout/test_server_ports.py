"""Servers started on a port found free start on another when that port was taken before they bound it
(rollout/process.start_on_free_port): the rollout engines, and mc-data's embedded engine. Real server
processes on loopback; another program's listening socket holds the first port."""
from __future__ import annotations

import json
import urllib.request

import pytest

from megatron_mc.data.pipeline.config import EngineConfig
from megatron_mc.data.pipeline.engine import EmbeddedEngine as DataEngine
from rollout.config import RolloutConfig
from rollout.process import PORT_ATTEMPTS, start_on_free_port
from rollout.sglang_engine import EngineActor
from tests.rollout.taken_port import first_port_found_free_is_taken


def _healthy(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/health", timeout=10) as resp:
        return resp.status == 200


def test_an_engine_whose_port_was_taken_meanwhile_starts_on_another(tmp_path, tiny_model_dir, monkeypatch):
    cfg = RolloutConfig(engine="embedded", dtype="float32", embedded_max_batch=2)
    actor = EngineActor(cfg, str(tiny_model_dir), 0, str(tmp_path), host="127.0.0.1")
    with first_port_found_free_is_taken(monkeypatch) as taken:
        url = actor.start()
        try:
            assert actor.port != taken and url == f"http://127.0.0.1:{actor.port}" and _healthy(url)
            assert actor.log_path.name == f"engine_0_{actor.port}.log"
            refused = (tmp_path / f"engine_0_{taken}.log").read_text()
            assert "address already in use" in refused.lower()  # the first try, its log kept
            assert actor.info()["restarts"] == 0
        finally:
            actor.stop()


def test_mc_datas_embedded_engine_whose_port_was_taken_meanwhile_starts_on_another(tmp_path, tiny_model_dir,
                                                                                  monkeypatch):
    engine = DataEngine(EngineConfig(model_path=str(tiny_model_dir), startup_timeout_s=120), tmp_path / "engine.log")
    with first_port_found_free_is_taken(monkeypatch) as taken:
        url = engine.start()
        try:
            assert not url.endswith(f":{taken}") and _healthy(url)
            with urllib.request.urlopen(f"{url}/model_info", timeout=10) as resp:
                assert json.loads(resp.read())["model_path"] == str(tiny_model_dir)
        finally:
            engine.stop()
    assert engine.process is None


def test_other_failures_are_not_retried_and_a_taken_port_only_so_often():
    calls = []

    def fails(message):
        def start(port):
            calls.append(port)
            raise RuntimeError(message)
        return start

    with pytest.raises(RuntimeError, match="model not found"):
        start_on_free_port("127.0.0.1", fails("model not found"))
    assert len(calls) == 1
    calls.clear()
    with pytest.raises(RuntimeError, match="Address already in use"):
        start_on_free_port("127.0.0.1", fails("server exited: OSError: [Errno 98] Address already in use"))
    assert len(calls) == PORT_ATTEMPTS
