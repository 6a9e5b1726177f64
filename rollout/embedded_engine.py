"""A small generation engine over an HF transformers causal LM: the compute behind the embedded server.

It generates a batch of requests together (left-padded prompts, one KV cache), each with its own sampling
parameters, and returns the log-prob of every sampled token at that request's temperature, as SGLang does
by default: log_softmax(logits / T) before top-k / top-p filtering (greedy: log_softmax(logits)). Weights
change only between batches: the server runs batches and weight loads on one thread.

For routing replay a request may ask for the experts each token was routed to: forward hooks on the HF
MoE blocks' routers record their top-k choices, returned as SGLang does (rollout/routed_experts.py).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch

from rollout.checkpoint_names import target_of
from rollout.routed_experts import routed_tokens

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class GenerationRequest:
    rid: str
    input_ids: list[int]
    max_new_tokens: int = 128
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    stop_token_ids: frozenset[int] = frozenset()
    ignore_eos: bool = False
    seed: int | None = None
    return_routed_experts: bool = False
    aborted: threading.Event = field(default_factory=threading.Event)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0 or self.top_k == 1


@dataclass
class GenerationResult:
    output_ids: list[int]
    logprobs: list[float]
    finish_reason: dict
    routed_experts: torch.Tensor | None = None  # [prompt + output - 1, layers, topk] int32, when asked for


class EmbeddedEngine:
    def __init__(self, model_path: str, dtype: str = "float32", device: str = "cpu", seed: int = 0,
                 seconds_per_token: float = 0.0):
        from transformers import AutoModelForCausalLM

        if dtype == "auto":
            dtype = "float32" if device == "cpu" else "bfloat16"
        if dtype not in DTYPES:
            raise ValueError(f"embedded engine: dtype must be one of {sorted(DTYPES)} or 'auto', got {dtype!r}")
        self.model_path = model_path
        self.seconds_per_token = seconds_per_token
        self.device = torch.device(device)
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=DTYPES[dtype]).to(self.device).eval()
        eos = self.model.generation_config.eos_token_id or self.model.config.eos_token_id
        self.eos_token_ids = frozenset([eos] if isinstance(eos, int) else (eos or []))
        self.pad_token_id = self.model.config.pad_token_id or 0
        self._seeds = torch.Generator().manual_seed(seed)
        # an HF mixture-of-experts block holds `experts` and its router `gate`, which returns the top-k ids last
        self.routers = [m.gate for m in self.model.modules() if hasattr(m, "experts") and hasattr(m, "gate")]

    # ---- weights ----------------------------------------------------------------------------------
    def load_named_tensors(self, named: Iterable[tuple[str, torch.Tensor]]) -> int:
        """Copy HF-named tensors into the model in place; all are checked before any is copied."""
        params = dict(self.model.named_parameters())
        named = list(named)
        targets = []
        for name, tensor in named:
            target = target_of(name, params)
            if target is None:
                raise KeyError(f"weight update: {name!r} is not a parameter of {self.model_path}; "
                               f"expected HF names like {next(iter(params))!r}")
            if tuple(target.shape) != tuple(tensor.shape):
                raise ValueError(f"weight update: {name!r} has shape {tuple(tensor.shape)}, "
                                 f"the model expects {tuple(target.shape)}")
            targets.append(target)
        with torch.no_grad():
            for target, (_, tensor) in zip(targets, named):
                target.copy_(tensor.to(device=target.device, dtype=target.dtype))
        return len(named)

    def load_from_disk(self, model_path: str) -> int:
        from safetensors.torch import load_file

        files = sorted(Path(model_path).glob("*.safetensors"))
        if not files:
            raise FileNotFoundError(f"weight update: no *.safetensors files in {model_path}")
        return sum(self.load_named_tensors(load_file(str(f)).items()) for f in files)

    # ---- generation -------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        batch = len(requests)
        generators = [self._generator(r) for r in requests]
        prompt_len = max(len(r.input_ids) for r in requests)
        input_ids = torch.full((batch, prompt_len), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((batch, prompt_len), dtype=torch.long)
        for row, req in enumerate(requests):
            input_ids[row, prompt_len - len(req.input_ids):] = torch.tensor(req.input_ids)
            mask[row, prompt_len - len(req.input_ids):] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        outputs: list[list[int]] = [[] for _ in requests]
        logprobs: list[list[float]] = [[] for _ in requests]
        finish: list[dict | None] = [None] * batch
        past = None
        step_ids, step_pos = input_ids, positions
        recorder = _RouteRecorder(self.routers, batch) if any(r.return_routed_experts for r in requests) else None
        for _ in range(max(r.max_new_tokens for r in requests)):
            if self.seconds_per_token:
                time.sleep(self.seconds_per_token)
            with recorder or nullcontext():
                out = self.model(input_ids=step_ids.to(self.device), attention_mask=mask.to(self.device),
                                 position_ids=step_pos.to(self.device), past_key_values=past, use_cache=True)
            past = out.past_key_values
            logits = out.logits[:, -1, :].float().cpu()
            next_ids = torch.full((batch,), self.pad_token_id, dtype=torch.long)
            for row, req in enumerate(requests):
                if finish[row] is not None:
                    continue
                if req.aborted.is_set():
                    finish[row] = {"type": "abort", "message": "aborted by /abort_request"}
                    continue
                token, logprob = _sample(logits[row], req, generators[row])
                outputs[row].append(token)
                logprobs[row].append(logprob)
                next_ids[row] = token
                finish[row] = self._finish_reason(req, token, len(outputs[row]))
            if all(f is not None for f in finish):
                break
            step_ids = next_ids[:, None]
            step_pos = step_pos[:, -1:] + 1
            mask = torch.cat([mask, torch.ones((batch, 1), dtype=torch.long)], dim=1)
        results = [GenerationResult(o, lp, f or {"type": "length", "length": len(o)})
                   for o, lp, f in zip(outputs, logprobs, finish)]
        for row, (req, result) in enumerate(zip(requests, results)):
            if req.return_routed_experts:
                result.routed_experts = recorder.routes(row, len(req.input_ids), len(result.output_ids))
        return results

    def _finish_reason(self, req: GenerationRequest, token: int, length: int) -> dict | None:
        if token in req.stop_token_ids or (not req.ignore_eos and token in self.eos_token_ids):
            return {"type": "stop", "matched": token}
        if length >= req.max_new_tokens:
            return {"type": "length", "length": length}
        return None

    def _generator(self, req: GenerationRequest) -> torch.Generator:
        seed = req.seed if req.seed is not None else int(torch.randint(0, 2**62, (1,), generator=self._seeds))
        return torch.Generator().manual_seed(seed)


class _RouteRecorder:
    """While entered, records every router's top-k expert ids per forward step as [batch, step tokens,
    topk]; `routes` cuts out one row's routed tokens: its prompt (left-padded in the prefill step) and the
    tokens it generated before its last."""

    def __init__(self, routers: list[torch.nn.Module], batch: int):
        if not routers:
            raise ValueError("routed experts were asked for, but the model has no mixture-of-experts layers")
        self.routers, self.batch = routers, batch
        self.steps: list[torch.Tensor] = []  # [batch, step tokens, layers, topk] per forward
        self._layers: list[torch.Tensor] = []

    def __enter__(self):
        self._hooks = [r.register_forward_hook(self._record) for r in self.routers]
        return self

    def __exit__(self, *exc):
        for hook in self._hooks:
            hook.remove()
        if exc[0] is None:
            self.steps.append(torch.stack(self._layers, dim=2))
        self._layers = []

    def _record(self, module, inputs, output):
        ids = output[-1].detach().to("cpu", torch.int32)
        self._layers.append(ids.view(self.batch, -1, ids.shape[-1]))

    def routes(self, row: int, prompt_len: int, output_len: int) -> torch.Tensor:
        prefill, decoded = self.steps[0], self.steps[1:]
        rows = [prefill[row, prefill.shape[1] - prompt_len:]] + [step[row] for step in decoded]
        return torch.cat(rows)[:routed_tokens(prompt_len, output_len)]


def _sample(logits: torch.Tensor, req: GenerationRequest, generator: torch.Generator) -> tuple[int, float]:
    if req.greedy:
        token = int(torch.argmax(logits))
        return token, float(torch.log_softmax(logits, -1)[token])
    scaled_logprobs = torch.log_softmax(logits / req.temperature, -1)
    probs = scaled_logprobs.exp()
    if req.top_k > 0:
        kth = torch.topk(probs, min(req.top_k, probs.numel())).values[-1]
        probs = torch.where(probs >= kth, probs, torch.zeros_like(probs))
    if req.top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        keep_sorted = sorted_probs.cumsum(-1) - sorted_probs < req.top_p * sorted_probs.sum()
        keep = torch.zeros_like(probs, dtype=torch.bool).scatter(0, order, keep_sorted)
        probs = torch.where(keep, probs, torch.zeros_like(probs))
    token = int(torch.multinomial(probs / probs.sum(), 1, generator=generator))
    return token, float(scaled_logprobs[token])
