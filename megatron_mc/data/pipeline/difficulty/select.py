"""Selection by calibrated pass rate: a band with a cap on the easy share, or a target count by quotas.

A problem is easy when its calibrated pass rate is at least `easy_pass_rate`, hard below `hard_pass_rate`,
medium between. Band mode drops problems outside [min_pass_rate, max_pass_rate], then the easiest of the
easy ones until easy problems are at most `max_easy_share` of what is kept (the paper cut them from about
40% to 20%). Quotas mode keeps `target_count` problems, `quotas[bucket]` of them from each bucket (a random
choice within a bucket, fixed by the seed; a bucket short of its quota is made up from the harder buckets
first). In both modes an anchor that no sample solved is dropped, provided the policy solved some anchor:
a policy that solves nothing tells nothing about any one problem.
"""
from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field

BUCKETS = ("easy", "medium", "hard")
MODES = ("band", "quotas")


@dataclass
class SelectConfig:
    mode: str = "band"
    min_pass_rate: float = 0.0        # band: below it, "too_hard"
    max_pass_rate: float = 1.0        # band: above it, "too_easy"
    max_easy_share: float = 0.2       # band: the easy share kept at most
    easy_pass_rate: float = 0.7
    hard_pass_rate: float = 0.3
    drop_unsolved: bool = True
    target_count: int | None = None   # quotas: how many problems to keep
    quotas: dict[str, float] = field(default_factory=lambda: {"easy": 0.2, "medium": 0.5, "hard": 0.3})
    seed: int = 0

    def __post_init__(self) -> None:
        where = "filter.difficulty.select"
        if self.mode not in MODES:
            raise ValueError(f"{where}.mode: must be one of {MODES}, got {self.mode!r}")
        for key in ("min_pass_rate", "max_pass_rate", "max_easy_share", "easy_pass_rate", "hard_pass_rate"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ValueError(f"{where}.{key}: must lie in [0, 1], got {getattr(self, key)}")
        if self.min_pass_rate > self.max_pass_rate:
            raise ValueError(f"{where}: min_pass_rate {self.min_pass_rate} is above max_pass_rate {self.max_pass_rate}")
        if self.hard_pass_rate > self.easy_pass_rate:
            raise ValueError(f"{where}: hard_pass_rate {self.hard_pass_rate} is above easy_pass_rate "
                             f"{self.easy_pass_rate}")
        for name, share in self.quotas.items():
            if name not in BUCKETS:
                raise ValueError(f"{where}.quotas.{name}: unknown bucket; use {', '.join(BUCKETS)}")
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"{where}.quotas.{name}: must lie in [0, 1], got {share}")
        if abs(sum(self.quotas.values()) - 1.0) > 1e-6:
            raise ValueError(f"{where}.quotas: shares must sum to 1, they sum to {sum(self.quotas.values()):.6g}")
        if self.mode == "quotas" and (self.target_count is None or self.target_count < 1):
            raise ValueError(f"{where}.target_count: quotas mode needs a target count >= 1, got {self.target_count}")

    def bucket(self, pass_rate: float) -> str:
        if pass_rate >= self.easy_pass_rate:
            return "easy"
        return "hard" if pass_rate < self.hard_pass_rate else "medium"


@dataclass(frozen=True)
class Dropped:
    id: str
    reason: str
    detail: str


def select(pass_rates: dict[str, float], measured: dict[str, dict], cfg: SelectConfig) -> tuple[list[str], list[Dropped], dict]:
    """(kept ids in input order, dropped with reasons, report). `pass_rates`: calibrated, per problem;
    `measured`: the anchors' {"solved", "samples"}."""
    dropped: list[Dropped] = []
    candidates = list(pass_rates)
    policy_solves = any(row["solved"] > 0 for row in measured.values())
    if cfg.drop_unsolved and policy_solves:
        unsolved = {i for i in candidates if i in measured and measured[i]["solved"] == 0}
        dropped += [Dropped(i, "never_solved", f"0 of {measured[i]['samples']} reference samples solved it")
                    for i in candidates if i in unsolved]
        candidates = [i for i in candidates if i not in unsolved]
    if cfg.mode == "band":
        kept, more = _band(candidates, pass_rates, cfg)
    else:
        kept, more = _quotas(candidates, pass_rates, cfg)
    dropped += more
    kept_set = set(kept)
    report = {"mode": cfg.mode, "buckets_before": _buckets(pass_rates, pass_rates, cfg),
              "buckets_after": _buckets(kept_set, pass_rates, cfg), "dropped": dict(Counter(d.reason for d in dropped)),
              "unsolved_rule": "applied" if cfg.drop_unsolved and policy_solves else
              ("off" if not cfg.drop_unsolved else "skipped: the reference policy solved no anchor")}
    return [i for i in pass_rates if i in kept_set], dropped, report


def _band(candidates: list[str], pass_rates: dict[str, float], cfg: SelectConfig) -> tuple[list[str], list[Dropped]]:
    dropped, kept = [], []
    for i in candidates:
        p = pass_rates[i]
        if p < cfg.min_pass_rate:
            dropped.append(Dropped(i, "too_hard", f"predicted pass rate {p:.3f} < min_pass_rate {cfg.min_pass_rate}"))
        elif p > cfg.max_pass_rate:
            dropped.append(Dropped(i, "too_easy", f"predicted pass rate {p:.3f} > max_pass_rate {cfg.max_pass_rate}"))
        else:
            kept.append(i)
    easy = sorted((i for i in kept if cfg.bucket(pass_rates[i]) == "easy"), key=lambda i: (-pass_rates[i], i))
    others = len(kept) - len(easy)
    share = cfg.max_easy_share
    allowed = len(easy) if share >= 1 else math.floor(share * others / (1 - share) + 1e-9)
    cut = set(easy[: max(0, len(easy) - allowed)])
    dropped += [Dropped(i, "too_easy", f"predicted pass rate {pass_rates[i]:.3f}: easy problems capped at "
                                       f"{share:.0%} of those kept") for i in easy if i in cut]
    return [i for i in kept if i not in cut], dropped


def _quotas(candidates: list[str], pass_rates: dict[str, float], cfg: SelectConfig) -> tuple[list[str], list[Dropped]]:
    rng = random.Random(cfg.seed)
    by_bucket = {b: sorted(i for i in candidates if cfg.bucket(pass_rates[i]) == b) for b in BUCKETS}
    for ids in by_bucket.values():
        rng.shuffle(ids)
    wanted = {b: round(cfg.target_count * cfg.quotas.get(b, 0.0)) for b in BUCKETS}
    kept = [i for b in BUCKETS for i in by_bucket[b][: wanted[b]]][: cfg.target_count]  # rounding may overshoot
    leftovers = [i for b in ("hard", "medium", "easy") for i in by_bucket[b][wanted[b]:]]
    kept += leftovers[: max(0, cfg.target_count - len(kept))]
    kept_set = set(kept)
    dropped = [Dropped(i, "over_quota", f"{cfg.bucket(pass_rates[i])} bucket full (target {cfg.target_count})")
               for i in candidates if i not in kept_set]
    return kept, dropped


def _buckets(ids, pass_rates: dict[str, float], cfg: SelectConfig) -> dict[str, int]:
    counts = Counter(cfg.bucket(pass_rates[i]) for i in ids)
    return {b: counts.get(b, 0) for b in BUCKETS}
