"""Measured difficulty: how often a reference policy solves each anchor problem.

The policy is sampled through our rollout engines (SGLang's `/generate`, or the embedded engine that speaks
it) with the prompt the trainer would build (rollout/prompts.py over the tokenizer's chat template); each
response's program (judge/extract.py) goes to the judge; a response without one fails unjudged. The
anchors spread over the predicted difficulty, so the calibration sees easy and hard problems alike. Each
problem's figures are checkpointed when its n samples are judged, so a rerun measures only the rest.
"""
from __future__ import annotations

import asyncio
import dataclasses
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from judge.extract import extract_code
from judge.problem import Problem
from megatron_mc.data.pipeline.checkpoint import checkpoint_as_completed
from megatron_mc.data.pipeline.record import ProblemRecord
from rollout.client import SGLangClient
from rollout.prompts import PromptBuilder

NO_CODE = "no_code"


@dataclass
class PassRateConfig:
    anchors: int = 32                 # problems measured; the calibration needs a few with differing pass rates
    samples: int = 4                  # n responses per anchor problem
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 512
    system_prompt: str = ""
    instruction: str = ""
    format_instruction: bool = True   # append the problem's format instruction (process stage) to its statement
    tokenizer_path: str | None = None  # None: the one the engine reports (/get_model_info tokenizer_path)
    concurrency: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        for key in ("anchors", "samples", "max_new_tokens", "concurrency"):
            if getattr(self, key) < 1:
                raise ValueError(f"filter.difficulty.pass_rates.{key}: must be >= 1, got {getattr(self, key)}")


def choose_anchors(records: list[ProblemRecord], weighted: dict[str, float], count: int) -> list[ProblemRecord]:
    """`count` problems evenly spaced along the predicted difficulty (all of them when there are fewer)."""
    ordered = sorted(records, key=lambda r: (weighted[r.id], r.id))
    if count >= len(ordered):
        return ordered
    step = (len(ordered) - 1) / (count - 1) if count > 1 else 0
    return [ordered[round(i * step)] for i in range(count)]


def prompt_problem(record: ProblemRecord, format_instruction: bool = True) -> Problem:
    """The problem as the rollout prompt builder reads it: the statement, then the format instruction."""
    statement = record.statement or str(record.problem.metadata.get("question_content") or "")
    instruction = (record.annotations.get("format_instruction") or "") if format_instruction else ""
    if instruction and instruction not in statement:
        statement = f"{statement}\n\n{instruction}"
    metadata = {**record.problem.metadata, "question_content": statement}
    if record.starter_code:
        metadata["starter_code"] = record.starter_code
    return dataclasses.replace(record.problem, metadata=metadata)


def measure_pass_rates(records: list[ProblemRecord], cfg: PassRateConfig, engine_url: str, judge_pool,
                       checkpoint, progress: Callable) -> dict[str, dict]:
    """{id: {"samples", "solved", "pass_rate", "verdicts"}}; rows already in `checkpoint` are reused."""
    done = {i: row for i, row in checkpoint.done.items() if row.get("samples") == cfg.samples}
    todo = [r for r in records if r.id not in done]
    if todo:
        done.update(asyncio.run(_measure(todo, cfg, engine_url, judge_pool, checkpoint, progress)))
    return {r.id: done[r.id] for r in records}


async def _measure(records: list[ProblemRecord], cfg: PassRateConfig, engine_url: str, judge_pool, checkpoint,
                   progress: Callable) -> dict[str, dict]:
    async with SGLangClient(engine_url, max_concurrency=cfg.concurrency) as client:
        prompts = PromptBuilder(await _tokenizer(client, cfg), cfg.system_prompt, cfg.instruction)
        return await checkpoint_as_completed((_measure_one(client, prompts, judge_pool, r, cfg) for r in records),
                                             checkpoint, progress, "pass rates")


async def _tokenizer(client: SGLangClient, cfg: PassRateConfig):
    from transformers import AutoTokenizer

    path = cfg.tokenizer_path
    if path is None:
        info = await client.get("/get_model_info")
        path = info.get("tokenizer_path") or info.get("model_path") if isinstance(info, dict) else None
        if not path:
            raise ValueError(f"{client.base_url}/get_model_info names no tokenizer_path; set "
                             "filter.difficulty.pass_rates.tokenizer_path")
    return await asyncio.to_thread(AutoTokenizer.from_pretrained, path)


async def _measure_one(client: SGLangClient, prompts: PromptBuilder, judge_pool, record: ProblemRecord,
                       cfg: PassRateConfig) -> tuple[str, dict]:
    problem = prompt_problem(record, cfg.format_instruction)
    prompt_ids = prompts.prompt_ids(problem)
    base_seed = zlib.crc32(record.id.encode()) + cfg.seed * 7919
    params = {"max_new_tokens": cfg.max_new_tokens, "temperature": cfg.temperature, "top_p": cfg.top_p}
    verdicts = await asyncio.gather(*(
        _solve(client, judge_pool, record.problem, prompt_ids, {**params, "sampling_seed": (base_seed + i) % 2**31})
        for i in range(cfg.samples)))
    solved = sum(v == "AC" for v in verdicts)
    return record.id, {"samples": cfg.samples, "solved": solved, "pass_rate": solved / cfg.samples,
                       "verdicts": dict(Counter(verdicts))}


async def _solve(client: SGLangClient, judge_pool, problem: Problem, prompt_ids: list[int], params: dict) -> str:
    output = await client.generate(prompt_ids, params, return_logprob=False)
    found = extract_code(output.text)
    if found is None:
        return NO_CODE
    code, language = found
    result = await judge_pool.submit(problem, code, language)
    return result.verdict.value
