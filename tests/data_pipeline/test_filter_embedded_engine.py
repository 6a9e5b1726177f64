"""The filter stage against the real embedded engine serving the tiny default's model, with the real judge:
the engine is the difficulty predictor (through /v1/chat/completions) and the reference policy (through
/generate). The untrained model answers the predictor with nonsense: every answer is recorded as unparsable
and the heuristic scores stand in; its pass rates are measured (n samples judged per anchor) and, as it
solves nothing, calibration is skipped with that reason."""
from __future__ import annotations

import json

import pytest
import requests

from megatron_mc.data import tiny_tasks
from megatron_mc.data.pipeline.difficulty.llm_predictor import LLMConfig
from megatron_mc.data.pipeline.difficulty.pass_rates import PassRateConfig, measure_pass_rates
from megatron_mc.data.pipeline.filter import DifficultyConfig, FilterConfig, run_filter
from megatron_mc.data.pipeline.record import ProblemRecord
from megatron_mc.data.pipeline.stage import Resources, StageContext
from megatron_mc.data.tiny_default import prepare_tiny_default
from rollout.config import RolloutConfig
from rollout.launch_args import server_command
from rollout.process import free_port, start_process, stop_process, wait_healthy
from tests.support import no_progress


@pytest.fixture(scope="module")
def engine_url(tmp_path_factory):
    tiny = prepare_tiny_default()
    port = free_port()
    log = tmp_path_factory.mktemp("engine") / "engine.log"
    cfg = RolloutConfig(engine="embedded", dtype="float32", embedded_max_batch=16)
    process = start_process(server_command(cfg, str(tiny.hf_dir), "127.0.0.1", port), log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, timeout_s=120, log_path=log)
        yield url
    finally:
        stop_process(process)


def tiny_records(count: int) -> list[ProblemRecord]:
    return [ProblemRecord(p, source="tiny", statement=p.metadata["question_content"], difficulty="easy")
            for p in tiny_tasks.make_problems("train")[:count]]


def served(url: str) -> int:
    return requests.get(f"{url}/get_server_info", timeout=10).json()["served"]


def test_pass_rates_sample_the_engine_and_judge_every_response(engine_url, tmp_path):
    records = tiny_records(2)
    ctx = StageContext(tmp_path, workers=1, quiet=True, resources=Resources(1, engine_url=engine_url))
    before = served(engine_url)
    cfg = PassRateConfig(samples=3, max_new_tokens=24, temperature=1.0)
    rows = measure_pass_rates(records, cfg, engine_url, ctx.judge_pool(), ctx.checkpoint("pass_rates"), no_progress)
    assert served(engine_url) - before == 6
    for record in records:
        row = rows[record.id]
        assert row["samples"] == 3 and sum(row["verdicts"].values()) == 3
        assert row["pass_rate"] == row["solved"] / 3
    assert set(ctx.checkpoint("pass_rates").done) == {r.id for r in records}
    ctx.resources.close()


def test_filter_with_the_embedded_engine_records_unparsable_answers_and_falls_back(engine_url, tmp_path):
    records = tiny_records(4)
    difficulty = DifficultyConfig(llm=LLMConfig(samples=2, max_tokens=12, backoff_s=0.05),
                                  pass_rates=PassRateConfig(anchors=3, samples=2, max_new_tokens=16))
    ctx = StageContext(tmp_path, workers=1, quiet=True, resources=Resources(1, engine_url=engine_url))
    out = run_filter(records, FilterConfig(difficulty=difficulty), ctx)
    ctx.close_checkpoints()
    ctx.resources.close()
    report = out.report["difficulty"]
    assert report["predictor"] == "llm" and report["endpoint"] == f"{engine_url}/v1/chat/completions"
    assert report["problems"] == {"llm": 0, "heuristic_fallback": 4}
    assert report["unparsable_answers"] == 8 and len(report["unparsable_examples"]) == 8
    assert all(e["error"] and "answer" in e for e in report["unparsable_examples"])
    calibration = report["calibration"]
    assert calibration["anchors"] == 3 and calibration["samples_per_anchor"] == 2
    if calibration["anchors_solved"] == 0:
        assert calibration["status"] == ("skipped: every anchor has pass rate 0.00: the reference policy separates "
                                         "none of them, so there is nothing to calibrate against")
    assert len(out.kept) + len(out.rejected) == 4
    assert all(r.annotations["difficulty_predictor"] == "heuristic_fallback" for r in out.kept)
    lines = (tmp_path / "llm_predictions.checkpoint.jsonl").read_text().splitlines()
    assert len(lines) == 4 and all(len(json.loads(line)["row"]["unparsable"]) == 2 for line in lines)
    assert len((tmp_path / "pass_rates.checkpoint.jsonl").read_text().splitlines()) == 3
    json.dumps(out.report)
