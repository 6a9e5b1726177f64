"""Decontamination against evaluation sets: by release date (on or after the evaluation window's start a
problem may be in the evaluation, so it goes) and by word n-grams shared with an evaluation statement."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from judge.loaders import FORMATS, load_problems
from megatron_mc.data.pipeline.dedup import shingles
from megatron_mc.data.pipeline.record import parse_date

BUNDLED_EVAL_SET = Path(__file__).resolve().parent / "corpus" / "eval_set.jsonl"


@dataclass
class EvalSetConfig:
    path: str | None = None          # None: the bundled corpus's evaluation set (corpus/eval_set.jsonl)
    format: str = "normalized"       # a judge.loaders format: normalized (our rows too), livecodebench, ...

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {self.format!r}")


@dataclass
class DecontaminationConfig:
    window_start: str | None = "2025-01-01"   # a date (record.parse_date: "2025-01-01", ...); None: no date rule
    eval_sets: list[EvalSetConfig] = field(default_factory=lambda: [EvalSetConfig()])
    ngram: int = 13                            # words per n-gram (13, as in GPT-3's and DeepCoder's checks)
    min_shared_ngrams: int = 1                 # this many shared n-grams make a problem contaminated

    def __post_init__(self) -> None:
        if self.window_start is not None:
            parse_date(self.window_start)   # ValueError names the bad value
        if self.ngram < 1 or self.min_shared_ngrams < 1:
            raise ValueError("ngram and min_shared_ngrams must be >= 1")


class Decontaminator:
    """Word n-grams (signs left out: constraints such as "1 <= n <= 10^6" are boilerplate, not content)."""

    def __init__(self, cfg: DecontaminationConfig) -> None:
        self.cfg = cfg
        self.eval_ngrams: dict[str, str] = {}   # n-gram -> id of an evaluation problem holding it
        self.eval_problems = 0
        for eval_set in cfg.eval_sets:
            path = Path(eval_set.path).expanduser() if eval_set.path else BUNDLED_EVAL_SET
            for problem in load_problems(path, eval_set.format):
                text = problem.metadata.get("statement") or problem.metadata.get("question_content") or ""
                self.eval_problems += 1
                for gram in shingles(text, cfg.ngram, signs=False) if text.strip() else ():
                    self.eval_ngrams.setdefault(gram, problem.id)

    def check(self, statement: str, release_date: str | None) -> tuple[str, str] | None:
        """None when clean, else (reason, detail). Dates are compared as dates (record.parse_date), never as text."""
        if self.cfg.window_start and release_date and parse_date(release_date) >= parse_date(self.cfg.window_start):
            return "released_in_eval_window", f"released {release_date}, window starts {self.cfg.window_start}"
        shared = [g for g in shingles(statement, self.cfg.ngram, signs=False) if g in self.eval_ngrams]
        if len(shared) >= self.cfg.min_shared_ngrams:
            return "eval_ngram_overlap", (f"{len(shared)} shared {self.cfg.ngram}-gram(s) with evaluation problem "
                                          f"{self.eval_ngrams[shared[0]]!r}, e.g. {shared[0]!r}")
        return None
