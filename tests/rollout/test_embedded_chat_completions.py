"""The embedded engine's OpenAI-style /v1/chat/completions: a real server process answering a real request
through the tokenizer's chat template (the same tokens /generate sees), n samples, seeds, usage, refusals;
and a tokenizer without a chat template gets a plain role: content join."""
from __future__ import annotations

import asyncio
import re

import pytest
import requests
from aiohttp import web
from transformers import AutoTokenizer

from rollout.embedded_engine import EmbeddedEngine
from rollout.embedded_server import EmbeddedServer
from rollout.process import free_port

MESSAGES = [{"role": "system", "content": "You rate problems."},
            {"role": "user", "content": "Rate: print the sum of two integers."}]


@pytest.fixture(scope="module")
def server_url(embedded_server, tiny_model_dir) -> str:
    return embedded_server(tiny_model_dir)


def chat(url: str, **body) -> requests.Response:
    return requests.post(f"{url}/v1/chat/completions", json={"model": "tiny", "messages": MESSAGES, **body},
                         timeout=60)


def test_chat_completion_answers_in_openai_shape_through_the_chat_template(server_url, tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    prompt_ids = tokenizer(tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True),
                           add_special_tokens=False)["input_ids"]
    resp = chat(server_url, n=2, temperature=0, max_tokens=6)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-") and body["model"] == "tiny"
    assert [c["index"] for c in body["choices"]] == [0, 1]
    contents = [c["message"]["content"] for c in body["choices"]]
    assert all(c["message"]["role"] == "assistant" and c["finish_reason"] in ("stop", "length")
               for c in body["choices"])
    assert contents[0] == contents[1], "greedy samples agree"
    usage = body["usage"]
    assert usage["prompt_tokens"] == len(prompt_ids)
    assert 2 <= usage["completion_tokens"] <= 12 and usage["total_tokens"] == len(prompt_ids) + usage["completion_tokens"]
    generated = requests.post(f"{server_url}/generate", json={
        "input_ids": prompt_ids, "sampling_params": {"temperature": 0, "max_new_tokens": 6}}, timeout=60).json()
    assert generated["text"] == contents[0], "the chat prompt is the chat template's tokens"


def test_seeds_make_samples_reproducible_and_differ_per_sample(server_url):
    first = chat(server_url, n=3, temperature=1.0, top_p=0.95, max_tokens=8, seed=11).json()
    again = chat(server_url, n=3, temperature=1.0, top_p=0.95, max_tokens=8, seed=11).json()
    contents = [c["message"]["content"] for c in first["choices"]]
    assert contents == [c["message"]["content"] for c in again["choices"]]
    assert len(set(contents)) > 1, "sample i uses seed + i"


@pytest.mark.parametrize("body, message", [
    ({"stream": True}, "does not stream"),
    ({"messages": []}, "messages must be a non-empty list"),
    ({"messages": [{"content": "no role"}]}, r"messages\[0\] must be an object with a string role"),
    ({"stop": ["\n"]}, "stop sequences"),
    ({"n": 0}, "n must be >= 1"),
])
def test_requests_it_cannot_serve_are_refused_with_the_reason(server_url, body, message):
    resp = chat(server_url, **body)
    assert resp.status_code == 400
    assert re.search(message, resp.json()["error"]["message"])


def test_a_tokenizer_without_chat_template_gets_a_plain_join(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.chat_template = None
    server = EmbeddedServer(EmbeddedEngine(str(tiny_model_dir)), tokenizer)
    port = free_port()

    async def scenario():
        runner = web.AppRunner(server.app())
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            return await asyncio.to_thread(chat, f"http://127.0.0.1:{port}", temperature=0, max_tokens=3)
        finally:
            await runner.cleanup()

    body = asyncio.run(scenario()).json()
    plain = "system: You rate problems.\n\nuser: Rate: print the sum of two integers.\n\nassistant: "
    assert body["usage"]["prompt_tokens"] == len(tokenizer(plain, add_special_tokens=False)["input_ids"])
