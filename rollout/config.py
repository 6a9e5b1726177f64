"""RolloutConfig: everything about generation, as plain types, validated on construction."""
from __future__ import annotations

from dataclasses import dataclass, field

ENGINE_KINDS = ("embedded", "sglang")
ROUTER_KINDS = ("auto", "sglang_router", "least_outstanding")
PLACEMENT_MODES = ("colocated", "disaggregated")
WEIGHT_SYNC_KINDS = ("tensor", "distributed", "disk")
DTYPES = ("float32", "bfloat16", "float16", "auto")


@dataclass
class RolloutConfig:
    # what to generate
    group_size: int = 8
    max_new_tokens: int = 1024
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    stop_token_ids: list[int] = field(default_factory=list)
    system_prompt: str = "You are an expert competitive programmer."
    instruction: str = (
        "Solve the problem below. Put your final solution in a single fenced code block "
        "(```python or ```cpp)."
    )
    # dynamic sampling: drop groups whose rewards are all equal, over-sample until the batch is full
    dynamic_sampling: bool = True
    over_sampling_factor: float = 1.5
    max_sampling_rounds: int = 4
    # engines
    engine: str = "embedded"
    num_engines: int = 1
    tp_size: int = 1
    mem_fraction_static: float = 0.8
    context_length: int | None = None
    dtype: str = "auto"
    rope_scaling: dict | None = None
    engine_startup_timeout_s: float = 600.0
    max_engine_restarts: int = 3
    embedded_max_batch: int = 32
    embedded_threads: int = 1  # torch threads per embedded engine; more only helps models far above tiny
    # seconds each decoding step takes at least: a rehearsal's tiny model answers in milliseconds, a real
    # engine in minutes, and only a slow response shows what happens to requests still running (lost aborts)
    embedded_seconds_per_token: float = 0.0
    # the embedded engine refuses (and dies on) what SGLang 0.5.x would fail on; rehearsals turn it on
    embedded_strict: bool = False
    # routing replay: every generation returns the experts each token was routed to (SGLang launched with
    # --enable-return-routed-experts); follows algo.routing_replay
    return_routed_experts: bool = False
    router: str = "auto"
    placement: str = "colocated"
    weight_sync: str = "disk"
    weight_sync_dir: str | None = None
    # client
    max_concurrency: int = 256
    request_timeout_s: float = 3600.0
    max_retries: int = 5
    retry_backoff_s: float = 0.5
    # reward phase
    judge_workers: int | None = None
    # temperature controller (MicroCoder): off when target_diversity is None
    target_diversity: float | None = None
    temperature_candidates: list[float] = field(default_factory=lambda: [0.6, 0.8, 1.0, 1.2, 1.4])
    temperature_stage_steps: int = 50
    temperature_probe_problems: int = 16
    diversity_ngram: int = 4

    def __post_init__(self) -> None:
        _positive_int(self, "group_size", "max_new_tokens", "num_engines", "tp_size", "max_sampling_rounds",
                      "max_concurrency", "embedded_max_batch", "embedded_threads", "temperature_stage_steps",
                      "temperature_probe_problems", "diversity_ngram")
        _choice(self, "engine", ENGINE_KINDS)
        _choice(self, "router", ROUTER_KINDS)
        _choice(self, "placement", PLACEMENT_MODES)
        _choice(self, "weight_sync", WEIGHT_SYNC_KINDS)
        _choice(self, "dtype", DTYPES)
        if not isinstance(self.embedded_strict, bool):
            raise ValueError(f"rollout.embedded_strict must be true or false, got {self.embedded_strict!r}")
        if self.temperature < 0:
            raise ValueError(f"rollout.temperature must be >= 0 (0 = greedy), got {self.temperature!r}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"rollout.top_p must be in (0, 1], got {self.top_p!r}")
        if self.top_k == 0 or self.top_k < -1:
            raise ValueError(f"rollout.top_k must be -1 (all) or >= 1, got {self.top_k!r}")
        if not 0 < self.mem_fraction_static < 1:
            raise ValueError(f"rollout.mem_fraction_static must be in (0, 1), got {self.mem_fraction_static!r}")
        if self.over_sampling_factor < 1:
            raise ValueError(f"rollout.over_sampling_factor must be >= 1, got {self.over_sampling_factor!r}")
        if self.context_length is not None and self.context_length <= 0:
            raise ValueError(f"rollout.context_length must be > 0 or null, got {self.context_length!r}")
        if self.max_retries < 0 or self.retry_backoff_s < 0 or self.request_timeout_s <= 0:
            raise ValueError("rollout.max_retries and rollout.retry_backoff_s must be >= 0, "
                             "rollout.request_timeout_s > 0")
        if self.embedded_seconds_per_token < 0:
            raise ValueError("rollout.embedded_seconds_per_token must be >= 0, "
                             f"got {self.embedded_seconds_per_token!r}")
        if self.max_engine_restarts < 0:
            raise ValueError(f"rollout.max_engine_restarts must be >= 0, got {self.max_engine_restarts!r}")
        if self.rope_scaling is not None and "rope_type" not in self.rope_scaling:
            raise ValueError("rollout.rope_scaling needs a 'rope_type' key (e.g. {'rope_type': 'yarn', "
                             "'factor': 4.0, 'original_max_position_embeddings': 32768})")
        if self.target_diversity is not None and not 0 < self.target_diversity <= 1:
            raise ValueError(f"rollout.target_diversity must be in (0, 1] or null, got {self.target_diversity!r}")
        if not self.temperature_candidates or any(t <= 0 for t in self.temperature_candidates):
            raise ValueError("rollout.temperature_candidates must be a non-empty list of temperatures > 0, "
                             f"got {self.temperature_candidates!r}")
        if self.temperature_candidates != sorted(self.temperature_candidates):
            raise ValueError(f"rollout.temperature_candidates must be ascending, got {self.temperature_candidates!r}")


def _positive_int(cfg: RolloutConfig, *names: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"rollout.{name} must be an integer >= 1, got {value!r}")


def _choice(cfg: RolloutConfig, name: str, allowed: tuple[str, ...]) -> None:
    value = getattr(cfg, name)
    if value not in allowed:
        raise ValueError(f"rollout.{name} must be one of {allowed}, got {value!r}")
