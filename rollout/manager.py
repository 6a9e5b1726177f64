"""RolloutManager: problems in, a full batch of judged Samples and the step's rollout metrics out.

1. problems -> prompts (chat template, system prompt, instruction)
2. G requests per problem to the router, with return_logprob, each sample requested once
3. each finished sample goes to the reward function at once, so judging overlaps generation
4. dynamic sampling: a group whose rewards are all equal teaches nothing and is dropped; more problems
   than needed are started (over-sampling), extra rounds draw more, and once the batch is full the
   requests still running are aborted (on every engine: the router does not forward aborts)
5. a sample generated with weights older than the step expects (an engine restarted with old weights) is
   asked again, never returned; counted in rollout/stale_samples
6. metrics: tokens/s, response length mean/max, truncation ratio, diversity, verdict counts
"""
from __future__ import annotations

import asyncio
import contextvars
import math
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from judge.problem import Problem
from rollout.client import SGLangClient
from rollout.config import RolloutConfig
from rollout.diversity import distinct_n, mean_over_groups, self_similarity
from rollout.prompts import PromptBuilder
from rollout.sample import Sample

# the request ids one `rollout()` call has running, so that it aborts its own surplus and not, say, an
# evaluation's requests running beside it (asynchronous training)
_ROLLOUT_RIDS: contextvars.ContextVar[set[str]] = contextvars.ContextVar("rollout_rids")

RewardFn = Callable[[Problem, Sample], Awaitable[tuple[float, dict]]]


@dataclass
class RolloutBatch:
    groups: list[list[Sample]]
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def samples(self) -> list[Sample]:
        return [s for g in self.groups for s in g]


class StaleWeightsError(RuntimeError):
    """Every attempt at a sample came back from an engine with weights older than the step expects."""


class RolloutManager:
    def __init__(self, cfg: RolloutConfig, client: SGLangClient, prompts: PromptBuilder,
                 reward_fn: RewardFn | None = None, expected_weight_version: int | None = None,
                 continue_partial: bool = False):
        """`expected_weight_version`: the oldest weight version a sample's tokens may carry; the driver sets it
        per batch. None accepts any version. `continue_partial`: an aborted generation is continued from its
        prefix (partial rollouts, train.async.partial_rollout: continue)."""
        self.cfg = cfg
        self.client = client
        self.prompts = prompts
        self.reward_fn = reward_fn
        self.expected_weight_version = expected_weight_version
        self.stale_samples = 0  # samples asked again because their weights were stale, in this rollout
        self.continue_partial = continue_partial
        self.pauses = 0  # engine pauses announced by note_pause
        self.continued_samples = 0  # generations continued after an abort, in this rollout

    def sampling_params(self, temperature: float) -> dict:
        params = {"temperature": temperature, "top_p": self.cfg.top_p, "top_k": self.cfg.top_k,
                  "max_new_tokens": self.cfg.max_new_tokens, "skip_special_tokens": False}
        if self.cfg.stop_token_ids:
            params["stop_token_ids"] = list(self.cfg.stop_token_ids)
        return params

    async def generate_sample(self, problem: Problem, prompt_ids: list[int], index: int, temperature: float,
                              group_tag: str) -> Sample:
        """One sample. An abort we did not ask for is asked again: with `continue_partial` from where it
        stopped when it made progress (the tokens so far keep the version that sampled them), else from the
        prompt. Aborts during a pause for a weight update (`note_pause`) and continued progress never count
        against rollout.max_retries; other aborts and samples whose oldest token is older than
        `expected_weight_version` (asked again from the prompt) do."""
        part = _Partial()
        attempt = failures = 0
        while True:
            rid = f"{group_tag}-{index}-{attempt}"
            attempt += 1
            params = self.sampling_params(temperature)
            params["max_new_tokens"] -= len(part.output_ids)
            pauses = self.pauses
            running = _ROLLOUT_RIDS.get(set())
            running.add(rid)
            try:
                out = await self.client.generate(prompt_ids + part.output_ids, params, rid=rid)
            finally:
                running.discard(rid)
            version = _weight_version(out.weight_version, out.rid)
            finish = out.finish_reason
            if finish == "abort" and self.continue_partial and out.output_ids:
                part.extend(out, version)
                if len(part.output_ids) >= self.cfg.max_new_tokens:
                    finish = "length"  # stopped exactly at the budget: nothing is left to continue
                    break
                self.continued_samples += 1
                continue
            if finish == "abort" and self.pauses != pauses:
                continue  # a weight update paused the engines: ask again
            if finish != "abort":
                part.extend(out, version)
                oldest = min(part.oldest_version, version)
                if not self._stale(oldest):
                    break
                self.stale_samples += 1
                stale_version, part = oldest, _Partial()
            failures += 1
            if failures > self.cfg.max_retries:
                if finish != "abort":
                    raise StaleWeightsError(
                        f"sample {problem.id!r}[{index}]: {failures} attempts, the last answered with weight version "
                        f"{stale_version} while this step expects {self.expected_weight_version}: an engine serves "
                        "old weights (restarted under tensor or distributed sync?); push it the newest weights and "
                        "readmit it (EngineFleet.engines_needing_weights / readmit)")
                part.extend(out, version)  # an abort sample: returned, never trained on (the loop drops it)
                break
            if finish != "abort":
                await asyncio.sleep(self.cfg.retry_backoff_s)  # a restarted engine is being brought up to date
        return Sample(problem_id=problem.id, group_index=index, prompt_ids=prompt_ids,
                      response_ids=part.output_ids, rollout_logprobs=part.logprobs, finish_reason=finish,
                      temperature=temperature, weight_version=part.versions[-1] if part.versions else version,
                      response_text=self._text(part), metadata={"rid": out.rid},
                      token_versions=part.token_versions(),
                      # the last request's routes cover the whole sequence: it prefilled the prompt and prefix
                      routed_experts=out.routed_experts)

    def note_pause(self) -> None:
        """The driver is about to pause the engines (a weight update): the aborts that follow are not
        failures. Called before the pause, from any thread."""
        self.pauses += 1

    def _text(self, part: _Partial) -> str:
        """One piece: the engine's text. Pieces: decoded once, as a whole (a character or a word split
        between two pieces decodes wrongly piece by piece)."""
        if part.pieces <= 1:
            return part.text
        return self.prompts.tokenizer.decode(part.output_ids, skip_special_tokens=False)

    def _stale(self, version: int) -> bool:
        return self.expected_weight_version is not None and version < self.expected_weight_version

    async def _scored_sample(self, problem: Problem, prompt_ids: list[int], index: int, temperature: float,
                             group_tag: str, score: bool) -> Sample:
        sample = await self.generate_sample(problem, prompt_ids, index, temperature, group_tag)
        if score and self.reward_fn is not None and sample.finish_reason != "abort":
            sample.reward, sample.verdict = await self.reward_fn(problem, sample)
        return sample

    async def generate_group(self, problem: Problem, temperature: float, score: bool = True) -> list[Sample]:
        prompt_ids = self.prompts.prompt_ids(problem)
        tag = f"{problem.id}-{uuid.uuid4().hex[:8]}"
        return list(await asyncio.gather(*(self._scored_sample(problem, prompt_ids, i, temperature, tag, score)
                                           for i in range(self.cfg.group_size))))

    def _keeps(self, group: list[Sample]) -> bool:
        return not self._filters() or len({s.reward for s in group}) > 1

    async def rollout(self, problems: Iterator[Problem], num_groups: int, temperature: float) -> RolloutBatch:
        """A batch of `num_groups` groups, drawing problems from `problems` as dynamic sampling needs."""
        start = time.monotonic()
        _ROLLOUT_RIDS.set(set())  # a fresh set: the group tasks started below share it
        self.stale_samples = self.continued_samples = 0
        kept: list[list[Sample]] = []
        dropped: list[list[Sample]] = []
        rounds = 0
        exhausted = False
        while len(kept) < num_groups and rounds < self.cfg.max_sampling_rounds and not exhausted:
            rounds += 1
            missing = num_groups - len(kept)
            want = math.ceil(missing * self.cfg.over_sampling_factor) if self._filters() else missing
            batch = [p for _, p in zip(range(want), problems)]
            exhausted = len(batch) < want
            tasks = [asyncio.ensure_future(self.generate_group(p, temperature)) for p in batch]
            try:
                for finished in asyncio.as_completed(tasks):
                    group = await finished
                    (kept if self._keeps(group) and len(kept) < num_groups else dropped).append(group)
                    if len(kept) >= num_groups:
                        break
            finally:
                await self._cancel(tasks)
        shortfall = num_groups - len(kept)
        groups = kept + dropped[:shortfall]  # the batch stays full; equal-reward groups carry zero advantage
        return RolloutBatch(groups, self.metrics(groups, time.monotonic() - start, rounds, len(dropped), shortfall))

    def _filters(self) -> bool:
        return self.cfg.dynamic_sampling and self.reward_fn is not None

    async def _cancel(self, tasks: list[asyncio.Future]) -> None:
        pending = [t for t in tasks if not t.done()]
        running = sorted(_ROLLOUT_RIDS.get())  # this rollout's surplus requests still running on the engines
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await asyncio.gather(*(self.client.abort(rid) for rid in running))  # a failed abort is logged there

    def metrics(self, groups: list[list[Sample]], seconds: float, rounds: int, dropped: int,
                shortfall: int) -> dict[str, float]:
        samples = [s for g in groups for s in g]
        lengths = [len(s.response_ids) for s in samples] or [0]
        responses = [[s.response_ids for s in g] for g in groups]
        verdicts = Counter(s.verdict.get("verdict", "unjudged") for s in samples)
        metrics = {
            "rollout/seconds": seconds,
            "rollout/tokens_per_s": sum(lengths) / seconds if seconds > 0 else 0.0,
            "rollout/response_len_mean": sum(lengths) / len(lengths),
            "rollout/response_len_max": float(max(lengths)),
            "rollout/truncation_ratio": sum(s.truncated for s in samples) / len(samples) if samples else 0.0,
            "rollout/distinct_n": mean_over_groups(responses, distinct_n, self.cfg.diversity_ngram),
            "rollout/self_similarity": mean_over_groups(responses, self_similarity, self.cfg.diversity_ngram),
            "rollout/sampling_rounds": float(rounds),
            "rollout/groups_dropped": float(dropped),
            "rollout/groups_short": float(max(shortfall, 0)),
            "rollout/client_retries": float(self.client.retries),
            "rollout/stale_samples": float(self.stale_samples),
            "rollout/continued_generations": float(self.continued_samples),
        }
        rewards = [s.reward for s in samples if s.reward is not None]
        if rewards:
            metrics["rollout/reward_mean"] = sum(rewards) / len(rewards)
        metrics.update({f"rollout/verdict_{v}": float(n) for v, n in verdicts.items()})
        return metrics

    async def probe(self, problems: list[Problem], temperature: float) -> list[list[list[int]]]:
        """Response token ids of one group per probe problem: the temperature controller's sampler."""
        groups = await asyncio.gather(*(self.generate_group(p, temperature, score=False) for p in problems))
        return [[s.response_ids for s in g] for g in groups]


@dataclass
class _Partial:
    """A response as it grows over attempts: aborted pieces continued with their prefix."""
    output_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)
    text: str = ""
    pieces: int = 0  # requests that contributed tokens

    def extend(self, out, version: int) -> None:
        self.pieces += bool(out.output_ids)
        self.output_ids += out.output_ids
        self.logprobs += out.logprobs
        self.versions += [version] * len(out.output_ids)
        self.text += out.text

    @property
    def oldest_version(self) -> int:
        return min(self.versions, default=1 << 62)

    def token_versions(self) -> list[int]:
        """Per-token versions where they differ; empty when one version sampled them all."""
        return self.versions if len(set(self.versions)) > 1 else []


def _weight_version(reported: str | None, rid: str) -> int:
    try:
        return int(reported)
    except (TypeError, ValueError):
        raise ValueError(f"request {rid}: the engine reports weight_version {reported!r}, not a number; launch "
                         "engines with --weight-version 0 (EngineActor does) and update them with integer versions") \
            from None
