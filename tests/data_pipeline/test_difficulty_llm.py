"""The LLM difficulty predictor against a real OpenAI-style chat endpoint on loopback (aiohttp, in a thread):
answers averaged over k samples, a fenced answer accepted, garbage recorded as unparsable with the heuristic
as fallback, a 500 retried, a 4xx refused with the endpoint named, and a checkpoint that spares a rerun."""
from __future__ import annotations

import json

import pytest
from aiohttp import web

from judge.problem import Problem, TestCase
from megatron_mc.data.pipeline.checkpoint import Checkpoint
from megatron_mc.data.pipeline.difficulty.dimensions import DEFAULT_WEIGHTS, Dimensions
from megatron_mc.data.pipeline.difficulty.heuristic_predictor import predict_heuristic
from megatron_mc.data.pipeline.difficulty.llm_predictor import (
    LLMConfig, LLMEndpointError, LLMPredictor, UnparsableAnswer, parse_scores)
from megatron_mc.data.pipeline.record import ProblemRecord
from tests.support import LoopbackApp, no_progress

DIMS = Dimensions.from_weights(DEFAULT_WEIGHTS)


def record(pid: str, statement: str = "Read n (1 <= n <= 10^5) and print n.") -> ProblemRecord:
    return ProblemRecord(Problem(pid, "stdio", [TestCase("1\n", "1\n")]), source="test", statement=statement)


def answer(value: int) -> str:
    return json.dumps({name: value for name in DIMS.names})


class FakeChatEndpoint(LoopbackApp):
    """POST /v1/chat/completions; what it answers is chosen per problem by a marker in the user message."""

    def __init__(self, answers: dict[str, list], fail_first: dict[str, int] | None = None):
        self.answers = answers             # marker -> list of contents, one per successive request
        self.fail_first = dict(fail_first or {})  # marker -> how many requests answer 500 first
        self.requests: list[dict] = []
        self.served: dict[str, int] = {}  # marker -> successful answers so far
        super().__init__()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        user = body["messages"][-1]["content"]
        marker = next(m for m in self.answers if f"[{m}]" in user)
        if self.fail_first.get(marker, 0) > 0:
            self.fail_first[marker] -= 1
            return web.Response(status=500, text="engine overloaded")
        if marker == "bad_request":
            return web.json_response({"error": {"message": "model 'x' not found"}}, status=404)
        contents = self.answers[marker]
        self.served[marker] = self.served.get(marker, 0) + 1
        content = contents[(self.served[marker] - 1) % len(contents)]
        return web.json_response({"id": "x", "object": "chat.completion", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self.handle)


def predictor(url: str, **overrides) -> LLMPredictor:
    cfg = LLMConfig(**{"samples": 3, "backoff_s": 0.01, "max_retries": 2, **overrides})
    return LLMPredictor(cfg, url + "/v1", DIMS)


def test_answers_are_averaged_fenced_accepted_garbage_falls_back_and_500_is_retried(tmp_path):
    answers = {
        "avg": [answer(2), answer(4), answer(9)],
        "fenced": ["```json\n" + answer(7) + "\n```"],
        "garbage": ["I think this is a medium problem.", '{"algorithmic_thinking": 11}', "[1, 2, 3]"],
        "flaky": [answer(5)],
    }
    records = [record(m, f"[{m}] Read n (1 <= n <= 10^5) and print n.") for m in answers]
    with FakeChatEndpoint(answers, fail_first={"flaky": 2}) as endpoint:
        llm = predictor(endpoint.url)
        checkpoint = Checkpoint(tmp_path / "llm.checkpoint.jsonl")
        predictions = llm.predict_all(records, checkpoint, no_progress)
        asked = len(endpoint.requests)

        assert predictions["avg"].scores == {n: 5.0 for n in DIMS.names}
        assert (predictions["avg"].predictor, predictions["avg"].answers) == ("llm", 3)
        assert predictions["fenced"].scores == {n: 7.0 for n in DIMS.names}
        garbage = predictions["garbage"]
        assert garbage.predictor == "heuristic_fallback" and garbage.answers == 0
        assert garbage.scores == predict_heuristic(records[2], DIMS)
        assert [u["sample"] for u in garbage.unparsable] == [0, 1, 2]
        errors = " | ".join(u["error"] for u in garbage.unparsable)
        assert "not a JSON object" in errors and "JSON list" in errors and "keys differ" in errors
        assert any(u["answer"] == "I think this is a medium problem." for u in garbage.unparsable)
        assert predictions["flaky"].scores == {n: 5.0 for n in DIMS.names}
        assert llm.retries == 2
        assert asked == 4 * 3 + 2
        body = endpoint.requests[0]
        assert body["max_tokens"] == 200 and body["n"] == 1 and body["stream"] is False
        assert "algorithmic_thinking" in body["messages"][-1]["content"]

        checkpoint.close()
        again = Checkpoint(tmp_path / "llm.checkpoint.jsonl")
        resumed = predictor(endpoint.url).predict_all(records, again, no_progress)
        assert len(endpoint.requests) == asked, "a rerun must not ask again for checkpointed problems"
        assert resumed["garbage"].unparsable == garbage.unparsable
        assert resumed["avg"].scores == predictions["avg"].scores


def test_a_4xx_and_exhausted_retries_stop_with_the_endpoint_named(tmp_path):
    with FakeChatEndpoint({"bad_request": [answer(1)], "down": [answer(1)]}, fail_first={"down": 99}) as endpoint:
        with pytest.raises(LLMEndpointError, match=r"/v1/chat/completions: HTTP 404.*not found"):
            predictor(endpoint.url).predict_all([record("b", "[bad_request] x")], Checkpoint(tmp_path / "a.jsonl"),
                                                no_progress)
        with pytest.raises(LLMEndpointError, match=r"failed 3 times; last: HTTP 500: engine overloaded"):
            predictor(endpoint.url, samples=1).predict_all([record("d", "[down] x")], Checkpoint(tmp_path / "b.jsonl"),
                                                           no_progress)


def test_parse_scores_is_strict():
    assert parse_scores("  " + answer(3) + "\n", DIMS) == {n: 3.0 for n in DIMS.names}
    assert parse_scores("```\n" + answer(8) + "\n```", DIMS) == {n: 8.0 for n in DIMS.names}
    bad = [
        "Sure! " + answer(3),                                  # prose around the object
        "```json\n" + answer(3) + "\n``` and more",            # text after the fence
        json.dumps({**{n: 3 for n in DIMS.names}, "extra": 2}),  # a key that is no dimension
        json.dumps({n: 3 for n in DIMS.names[:-1]}),            # a dimension missing
        json.dumps({**{n: 3 for n in DIMS.names}, DIMS.names[0]: "7"}),  # a string, not a number
        json.dumps({**{n: 3 for n in DIMS.names}, DIMS.names[0]: 0}),    # out of range
        json.dumps({**{n: 3 for n in DIMS.names}, DIMS.names[0]: True}),
    ]
    for text in bad:
        with pytest.raises(UnparsableAnswer):
            parse_scores(text, DIMS)
