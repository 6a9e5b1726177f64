"""Exact and near-duplicate removal over normalized statements, near duplicates by MinHash LSH (datasketch)."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from datasketch import MinHash, MinHashLSH


@dataclass
class DedupConfig:
    threshold: float = 0.8      # estimated Jaccard similarity of word shingles at which two statements are one
    num_perm: int = 128
    shingle_words: int = 5

    def __post_init__(self) -> None:
        if not 0 < self.threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")
        if self.shingle_words < 1:
            raise ValueError(f"shingle_words must be >= 1, got {self.shingle_words}")
        try:
            MinHashLSH(threshold=self.threshold, num_perm=self.num_perm)
        except ValueError as e:
            raise ValueError(f"threshold {self.threshold} with num_perm {self.num_perm}: {e}; lower the threshold "
                             "or raise num_perm") from None


def words(text: str, signs: bool = True) -> list[str]:
    """Lowercase words and numbers, and (with `signs`) each operator sign on its own, so that "print a + b"
    and "print a * b" differ."""
    return re.findall(r"[a-z0-9]+|[-+*/%^<>=!|&]" if signs else r"[a-z0-9]+", text.lower())


def shingles(text: str, n: int, signs: bool = True) -> set[str]:
    tokens = words(text, signs)
    if len(tokens) <= n:
        return {" ".join(tokens)}
    return {" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1)}


class Deduplicator:
    """Feed statements in order; each answers None (new) or (reason, id of the earlier one it repeats)."""

    def __init__(self, cfg: DedupConfig) -> None:
        self.cfg = cfg
        self.exact: dict[str, str] = {}
        self.lsh = MinHashLSH(threshold=cfg.threshold, num_perm=cfg.num_perm)
        self.signatures: dict[str, MinHash] = {}

    def check(self, problem_id: str, statement: str, tests_key: str) -> tuple[str, str] | None:
        # Same words and same tests: the same problem, whatever its markup. Same words with other tests is
        # still the same task for a model, caught by the near-duplicate rule below.
        key = hashlib.sha256((" ".join(words(statement)) + "\0" + tests_key).encode()).hexdigest()
        if key in self.exact:
            return "exact_duplicate", self.exact[key]
        signature = MinHash(num_perm=self.cfg.num_perm)
        signature.update_batch([s.encode() for s in shingles(statement, self.cfg.shingle_words)])
        for other in sorted(self.lsh.query(signature)):
            similarity = signature.jaccard(self.signatures[other])
            if similarity >= self.cfg.threshold:
                return "near_duplicate", f"{other} (estimated Jaccard {similarity:.2f})"
        self.exact[key] = problem_id
        self.lsh.insert(problem_id, signature)
        self.signatures[problem_id] = signature
        return None
