"""Difficulty from a judge LLM behind any OpenAI-compatible chat endpoint (`POST {base}/v1/chat/completions`:
SGLang, vLLM, the embedded engine, a hosted API).

Each problem is asked `samples` times (k); every answer must be one JSON object giving each dimension a
number from 1 to 10, and nothing else; a ```json fence around it is the only thing tolerated (serve
reasoning models with a reasoning parser, so their thinking stays out of the message content). The
parsable answers are averaged; the unparsable ones are recorded with the reason and the answer's start,
and a problem without any parsable answer gets the heuristic predictor's scores. A request that fails
(connection error, timeout, 429 or 5xx) is retried with exponential backoff; a 4xx, or a failure after the
last retry, stops the stage with the endpoint named: what finished is in the checkpoint, so a rerun asks
only for the rest. At most `concurrency` requests are in flight.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import aiohttp

from megatron_mc.data.pipeline.checkpoint import checkpoint_as_completed
from megatron_mc.data.pipeline.difficulty.dimensions import SCORE_MAX, SCORE_MIN, Dimensions
from megatron_mc.data.pipeline.difficulty.heuristic_predictor import predict_heuristic
from megatron_mc.data.pipeline.record import ProblemRecord

_FENCED = re.compile(r"\A```(?:json)?[ \t]*\n(.*)\n```\Z", re.DOTALL)
ANSWER_EXCERPT_CHARS = 300
SYSTEM_PROMPT = ("You rate the difficulty of competitive programming problems. You answer with one JSON object "
                 "and nothing else.")


@dataclass
class LLMConfig:
    base_url: str | None = None     # None: the run's engine (ctx.engine_url), when it has one
    model: str = "default"
    samples: int = 3                # k answers per problem, averaged
    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 200
    max_statement_chars: int = 6000
    concurrency: int = 16
    timeout_s: float = 300.0
    max_retries: int = 4
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    api_key_env: str | None = None  # name of an environment variable holding a bearer token
    seed: int = 0

    def __post_init__(self) -> None:
        for key in ("samples", "max_tokens", "concurrency", "max_statement_chars"):
            if getattr(self, key) < 1:
                raise ValueError(f"filter.difficulty.llm.{key}: must be >= 1, got {getattr(self, key)}")
        if self.max_retries < 0:
            raise ValueError(f"filter.difficulty.llm.max_retries: must be >= 0, got {self.max_retries}")


class UnparsableAnswer(ValueError):
    """An answer that is not exactly the JSON object asked for."""


class LLMEndpointError(RuntimeError):
    """The chat endpoint refused a request, or kept failing after every retry."""


@dataclass
class Prediction:
    scores: dict[str, float]
    predictor: str                  # "llm" | "heuristic" | "heuristic_fallback" (no parsable LLM answer)
    answers: int = 0                # parsable LLM answers averaged
    unparsable: list[dict] = field(default_factory=list)  # {"sample", "error", "answer"} per unparsable answer

    def to_row(self) -> dict:
        return {"scores": self.scores, "predictor": self.predictor, "answers": self.answers,
                "unparsable": self.unparsable}

    @classmethod
    def from_row(cls, row: Mapping) -> Prediction:
        return cls(dict(row["scores"]), row["predictor"], int(row.get("answers", 0)), list(row.get("unparsable", [])))


def build_messages(record: ProblemRecord, dimensions: Dimensions, max_statement_chars: int) -> list[dict[str, str]]:
    statement = record.statement or str(record.problem.metadata.get("question_content") or "")
    if len(statement) > max_statement_chars:
        statement = statement[:max_statement_chars] + "\n[statement truncated]"
    listing = "\n".join(f"- {name}: {dimensions.describe(name)}" for name in dimensions.names)
    template = "{" + ", ".join(f'"{name}": <integer 1-10>' for name in dimensions.names) + "}"
    user = (f"Rate how difficult this problem is on each dimension, from 1 (trivial) to 10 (the hardest "
            f"contest problems):\n{listing}\n\nAnswer with exactly this JSON object and nothing else:\n{template}"
            f"\n\nProblem:\n{statement}")
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def parse_scores(answer: str, dimensions: Dimensions) -> dict[str, float]:
    """The scores in one answer; UnparsableAnswer says what is wrong with it."""
    text = answer.strip()
    fenced = _FENCED.match(text)
    if fenced:
        text = fenced.group(1).strip()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise UnparsableAnswer(f"not a JSON object ({e.msg} at char {e.pos})") from None
    if not isinstance(value, dict):
        raise UnparsableAnswer(f"a JSON {type(value).__name__}, not an object")
    missing = [n for n in dimensions.names if n not in value]
    extra = sorted(set(value) - set(dimensions.names))
    if missing or extra:
        raise UnparsableAnswer(f"keys differ from the dimensions (missing {missing}, unexpected {extra})")
    scores = {}
    for name in dimensions.names:
        score = value[name]
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not SCORE_MIN <= score <= SCORE_MAX:
            raise UnparsableAnswer(f"{name}: {score!r} is not a number from 1 to 10")
        scores[name] = float(score)
    return scores


def chat_url(base_url: str) -> str:
    base = base_url.rstrip("/")
    return (base[: -len("/v1")] if base.endswith("/v1") else base) + "/v1/chat/completions"


class LLMPredictor:
    def __init__(self, cfg: LLMConfig, base_url: str, dimensions: Dimensions):
        self.cfg = cfg
        self.url = chat_url(base_url)
        self.dimensions = dimensions
        self.retries = 0  # requests repeated after a failure, for the report
        token = os.environ.get(cfg.api_key_env) if cfg.api_key_env else None
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}

    def predict_all(self, records: list[ProblemRecord], checkpoint, progress: Callable) -> dict[str, Prediction]:
        """Predictions by problem id; those in `checkpoint` (done: {id: row}, append(id, row)) are reused,
        each new one is appended as it finishes."""
        done = {i: Prediction.from_row(row) for i, row in checkpoint.done.items()
                if set(row.get("scores", {})) == set(self.dimensions.names)}
        todo = [r for r in records if r.id not in done]
        if todo:
            done.update(asyncio.run(self._predict_many(todo, checkpoint, progress)))
        return {r.id: done[r.id] for r in records}

    async def _predict_many(self, records: list[ProblemRecord], checkpoint, progress: Callable) -> dict[str, Prediction]:
        slots = asyncio.Semaphore(self.cfg.concurrency)
        timeout = aiohttp.ClientTimeout(total=self.cfg.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout, headers=self._headers) as session:
            return await checkpoint_as_completed((self._predict(session, slots, r) for r in records), checkpoint,
                                                 progress, "difficulty (LLM)", Prediction.to_row)

    async def _predict(self, session: aiohttp.ClientSession, slots: asyncio.Semaphore,
                       record: ProblemRecord) -> tuple[str, Prediction]:
        messages = build_messages(record, self.dimensions, self.cfg.max_statement_chars)
        answers = await asyncio.gather(*(self._ask(session, slots, messages, self._seed(record.id, k))
                                         for k in range(self.cfg.samples)))
        parsed, unparsable = [], []
        for k, answer in enumerate(answers):
            try:
                parsed.append(parse_scores(answer, self.dimensions))
            except UnparsableAnswer as e:
                unparsable.append({"sample": k, "error": str(e), "answer": answer[:ANSWER_EXCERPT_CHARS]})
        if not parsed:
            return record.id, Prediction(predict_heuristic(record, self.dimensions), "heuristic_fallback", 0, unparsable)
        mean = {n: round(sum(p[n] for p in parsed) / len(parsed), 4) for n in self.dimensions.names}
        return record.id, Prediction(mean, "llm", len(parsed), unparsable)

    def _seed(self, record_id: str, sample: int) -> int:
        return (zlib.crc32(record_id.encode()) + self.cfg.seed * 7919 + sample) % (2**31)

    async def _ask(self, session: aiohttp.ClientSession, slots: asyncio.Semaphore, messages: list[dict],
                   seed: int) -> str:
        body = {"model": self.cfg.model, "messages": messages, "temperature": self.cfg.temperature,
                "top_p": self.cfg.top_p, "max_tokens": self.cfg.max_tokens, "n": 1, "seed": seed, "stream": False}
        attempt = 0
        while True:
            try:
                async with slots, session.post(self.url, json=body) as resp:
                    text = await resp.text()
                    if resp.status < 400:
                        return _content(text)
                    if resp.status != 429 and resp.status < 500:
                        raise LLMEndpointError(f"POST {self.url}: HTTP {resp.status}: {text[:500]}")
                    problem = f"HTTP {resp.status}: {text[:200]}"
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError) as e:
                problem = f"{type(e).__name__}: {e}"
            attempt += 1
            if attempt > self.cfg.max_retries:
                raise LLMEndpointError(f"POST {self.url} failed {attempt} times; last: {problem}; "
                                       "finished predictions are kept in the checkpoint, rerun to continue")
            self.retries += 1
            await asyncio.sleep(min(self.cfg.max_backoff_s, self.cfg.backoff_s * 2 ** (attempt - 1)))


def _content(text: str) -> str:
    """choices[0].message.content of an OpenAI chat response; an answer that lacks it counts as unparsable."""
    try:
        content = json.loads(text)["choices"][0]["message"]["content"]
    except (json.JSONDecodeError, KeyError, IndexError, TypeError):
        return f"<response without choices[0].message.content: {text[:200]}>"
    return content if isinstance(content, str) else ""
