"""A tiny task family whose answers need most of a small token budget: the truncation mask's test bed.

Each problem reads a list of integers and prints three statistics of it (sum, maximum, ...), one per
line, in the order the statement names them. Every problem has three correct solutions of different
lengths (compact, plain, verbose), all taught by the warm start, so a model sampling at temperature 1
writes the long ones a fair share of the time: with a budget between the compact and the verbose
length (see examples/configs/tiny_long_answers.yaml), those responses are cut off while still on the
right track, which is the case MicroCoder's conditional truncation mask is about. The judged reference
(metadata["reference_solution"]) is the compact one.

Split: the held-out set is unseen orderings of the statistics (every tenth ordered triple); every
statistic is trained in every position with the others. Problems use the same normalized form as
tiny_tasks (statement in metadata["question_content"]).
"""
from __future__ import annotations

import itertools
import json
import random
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from judge.problem import Problem, TestCase
from megatron_mc.data.tiny_tasks import IO_NOTE, PRINTABLE, TESTS_PER_PROBLEM, _int_list
from megatron_mc.run_state import write_atomic

HELD_OUT_EVERY = 10  # every tenth ordered triple of statistics is held out
HELD_OUT_OFFSET = 3


@dataclass(frozen=True)
class Statistic:
    name: str
    phrase: str  # how a statement names it
    expr: str  # Python expression over the list, str.format with v=list variable name
    variable: str  # the verbose solution's name for it
    compute: Callable[[list[int]], int]


# phrases use the word the code uses where there is one, so the two-layer model can copy it while it
# keeps track of which of the three it is writing
STATISTICS: tuple[Statistic, ...] = (
    Statistic("sum", "the sum", "sum({v})", "total", sum),
    Statistic("max", "the max", "max({v})", "largest", max),
    Statistic("min", "the min", "min({v})", "smallest", min),
    Statistic("first", "the first value", "{v}[0]", "first", lambda xs: xs[0]),
    Statistic("last", "the last value", "{v}[-1]", "last", lambda xs: xs[-1]),
    Statistic("range", "max minus min", "max({v}) - min({v})", "spread", lambda xs: max(xs) - min(xs)),
)

PHRASINGS = (
    "The first line holds n, the second n integers. Print {a}, then {b}, then {c}, each on its own line.",
    "Given a count n and then n integers on the next line, output {a}, {b} and {c}, one per line.",
)


def _solutions(stats: tuple[Statistic, ...]) -> tuple[str, str, str]:
    """(compact, plain, verbose) correct programs, shortest first."""
    compact = "input()\nv = list(map(int, input().split()))\n" + "\n".join(
        f"print({s.expr.format(v='v')})" for s in stats)
    plain = "n = int(input())\nvalues = list(map(int, input().split()))\n" + "\n".join(
        f"print({s.expr.format(v='values')})" for s in stats)
    verbose = "n = int(input())\nvalues = list(map(int, input().split()))\n" + "\n".join(
        f"{s.variable} = {s.expr.format(v='values')}" for s in stats) + "\n" + "\n".join(
        f"print({s.variable})" for s in stats)
    return compact, plain, verbose


def _triples() -> list[tuple[Statistic, ...]]:
    return list(itertools.permutations(STATISTICS, 3))


def _problem(stats: tuple[Statistic, ...], phrasing_index: int, split: str) -> Problem:
    name = "-".join(s.name for s in stats)
    problem_id = f"tiny_long/{name}/v{phrasing_index}"
    rng = random.Random(zlib.crc32(problem_id.encode()))
    inputs: list[str] = []
    for _ in range(50 * TESTS_PER_PROBLEM):
        text = _int_list(rng, 0)
        if text not in inputs:
            inputs.append(text)
        if len(inputs) == TESTS_PER_PROBLEM:
            break
    values = [[int(x) for x in text.splitlines()[1].split()] for text in inputs]
    tests = [TestCase(text, "\n".join(str(s.compute(xs)) for s in stats) + "\n") for text, xs in zip(inputs, values)]
    statement = PHRASINGS[phrasing_index].format(a=stats[0].phrase, b=stats[1].phrase, c=stats[2].phrase)
    solutions = _solutions(stats)
    return Problem(
        id=problem_id, kind="stdio", tests=tests, time_limit_s=2.0, memory_limit_mb=256,
        metadata={"question_content": f"{statement} {IO_NOTE}", "reference_solution": solutions[0],
                  "reference_solutions": list(solutions), "template": f"long/{name}", "param": 0,
                  "split": split, "difficulty": "easy", "platform": "tiny"})


def make_problems(split: str) -> list[Problem]:
    """All problems of `split` ("train" or "held_out"), in a fixed order."""
    if split not in ("train", "held_out"):
        raise ValueError(f"split must be 'train' or 'held_out', got {split!r}")
    held_out = split == "held_out"
    return [_problem(stats, index, split) for k, stats in enumerate(_triples())
            if (k % HELD_OUT_EVERY == HELD_OUT_OFFSET) == held_out for index in range(len(PHRASINGS))]


def write_problems(path: str | Path, split: str) -> Path:
    path = Path(path)
    write_atomic(path, "".join(json.dumps(p.to_dict()) + "\n" for p in make_problems(split)))
    return path


def sft_responses(problem: Problem) -> list[str]:
    """Every correct answer the warm start teaches for `problem`, each in a fenced Python block."""
    return [f"```python\n{solution}\n```" for solution in problem.metadata["reference_solutions"]]


def tokenizer_corpus() -> list[str]:
    """Training statements and every answer variant, plus every printable ASCII character once."""
    texts = [PRINTABLE]
    for problem in make_problems("train"):
        texts += [problem.metadata["question_content"], *sft_responses(problem)]
    return texts
