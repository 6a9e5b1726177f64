"""The embedded default's tasks: small stdin/stdout programming problems made from templates.

Each template has a few phrasings, a test-input generator, the expected answer computed in Python, and
a reference solution (the text a model should learn to write). Some templates take an integer
parameter written into the statement ("print n + 7").

Split: the held-out set is *unseen (template, value) combinations*. Every parameterised template
draws from the same values PARAMS; each holds out three of them, rotating by two positions from one
template to the next, so that every held-out value is trained with most other templates (e.g. the
model never sees "print n + 6" but sees n * 6, n % 6, "greater than 6" ...), in both statement and
code. No held-out statement appears in training. Templates without a parameter appear in training
only. A model passes held-out problems by carrying a number it has written before from the
statement into the code of a template it knows, not by recalling a training problem.

Problems are written as normalized problem JSONL (judge/problem.py); the statement is
metadata["question_content"] (as the LiveCodeBench loader names it) and the reference solution
metadata["reference_solution"].
"""
from __future__ import annotations

import json
import random
import string
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from judge.problem import Problem, TestCase
from megatron_mc.run_state import write_atomic

TESTS_PER_PROBLEM = 6
IO_NOTE = "Read from standard input and write to standard output."
PARAMS = tuple(range(2, 13))
HELD_OUT_PER_TEMPLATE = 3
HELD_OUT_ROTATION = 2
NO_PARAM = (0,)
PRINTABLE = "".join(c for c in string.printable if c not in "\t\r\x0b\x0c")


@dataclass(frozen=True)
class Template:
    name: str
    phrasings: tuple[str, ...]  # str.format with p=parameter
    make_input: Callable[[random.Random, int], str]
    solve: Callable[[str, int], str]  # input text, parameter -> expected output text (without newline)
    solution: str  # str.format with p=parameter
    params: tuple[int, ...] = NO_PARAM
    held_out_params: tuple[int, ...] = ()


def _split_params(k: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(train values, held-out values) of the k-th parameterised template; see the module docstring."""
    start = HELD_OUT_ROTATION * (k + 1)
    held_out = tuple(PARAMS[(start + j) % len(PARAMS)] for j in range(HELD_OUT_PER_TEMPLATE))
    return tuple(p for p in PARAMS if p not in held_out), held_out


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split()]


def _two_ints(rng: random.Random, p: int) -> str:
    return f"{rng.randint(-50, 99)} {rng.randint(-50, 99)}\n"


def _one_int(rng: random.Random, p: int) -> str:
    return f"{rng.randint(0, 99)}\n"


def _two_ints_first(rng: random.Random, p: int) -> str:
    return f"{rng.randint(-99, 99)}\n"


def _word(rng: random.Random, p: int) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(1, 9))) + "\n"


def _maybe_palindrome(rng: random.Random, p: int) -> str:
    """Half the time a palindrome (of odd or even length), else a random word."""
    word = _word(rng, p).strip()
    if rng.random() < 0.5:
        word += word[::-1][rng.randint(0, 1):]
    return word + "\n"


def _int_list(rng: random.Random, p: int) -> str:
    values = [rng.randint(-20, 40) for _ in range(rng.randint(1, 7))]
    return f"{len(values)}\n{' '.join(map(str, values))}\n"


def _list_values(text: str) -> list[int]:
    return _ints(text.splitlines()[1])


TWO_INTS = "a, b = map(int, input().split())\nprint({expr})"
ONE_INT = "n = int(input())\nprint({expr})"
LIST = "input()\nvalues = list(map(int, input().split()))\nprint({expr})"

TEMPLATES: tuple[Template, ...] = (
    Template("sum_two", ("Read two integers a and b on one line and print a + b.",
                         "Given two integers separated by a space, output their sum."),
             _two_ints, lambda s, p: str(sum(_ints(s))), TWO_INTS.format(expr="a + b")),
    Template("max_two", ("Read two integers a and b on one line and print the larger one.",
                         "Given two integers separated by a space, output their maximum."),
             _two_ints, lambda s, p: str(max(_ints(s))), TWO_INTS.format(expr="max(a, b)")),
    Template("min_two", ("Read two integers a and b on one line and print the smaller one.",
                         "Given two integers separated by a space, output their minimum."),
             _two_ints, lambda s, p: str(min(_ints(s))), TWO_INTS.format(expr="min(a, b)")),
    Template("product_two", ("Read two integers a and b on one line and print a * b.",
                             "Given two integers separated by a space, output their product."),
             _two_ints, lambda s, p: str(_ints(s)[0] * _ints(s)[1]), TWO_INTS.format(expr="a * b")),
    Template("difference_two", ("Read two integers a and b on one line and print a - b.",
                                "Given two integers a and b separated by a space, output a minus b."),
             _two_ints, lambda s, p: str(_ints(s)[0] - _ints(s)[1]), TWO_INTS.format(expr="a - b")),
    Template("reverse_word", ("Read a word and print it reversed.",
                              "Given a string on one line, output the string backwards."),
             _word, lambda s, p: s.strip()[::-1], "s = input()\nprint(s[::-1])"),
    Template("count_vowels", ("Read a word and print how many vowels (a, e, i, o, u) it has.",
                              "Given a lowercase word, output the number of vowels in it."),
             _word, lambda s, p: str(sum(c in "aeiou" for c in s.strip())),
             "s = input()\nprint(sum(c in \"aeiou\" for c in s))"),
    Template("upper_word", ("Read a word and print it in upper case.",
                            "Given a lowercase word, output it with every letter capitalised."),
             _word, lambda s, p: s.strip().upper(), "s = input()\nprint(s.upper())"),
    Template("word_length", ("Read a word and print its length.",
                             "Given a word, output how many letters it has."),
             _word, lambda s, p: str(len(s.strip())), "s = input()\nprint(len(s))"),
    Template("sum_list", ("The first line holds n, the second n integers. Print their sum.",
                          "Given a count n and then n integers on the next line, output the total."),
             _int_list, lambda s, p: str(sum(_list_values(s))), LIST.format(expr="sum(values)")),
    Template("max_list", ("The first line holds n, the second n integers. Print the largest.",
                          "Given a count n and then n integers on the next line, output the maximum."),
             _int_list, lambda s, p: str(max(_list_values(s))), LIST.format(expr="max(values)")),
    Template("count_up", ("Read n and print the numbers 1 to n, one per line.",
                          "Given a positive integer n, output 1, 2, ..., n each on its own line."),
             lambda rng, p: f"{rng.randint(1, 12)}\n",
             lambda s, p: "\n".join(str(i) for i in range(1, int(s) + 1)),
             "n = int(input())\nfor i in range(1, n + 1):\n    print(i)"),
    Template("square", ("Read an integer n and print n * n.",
                        "Given an integer, output its square."),
             _two_ints_first, lambda s, p: str(int(s) ** 2), ONE_INT.format(expr="n * n")),
    Template("absolute", ("Read an integer and print its absolute value.",
                          "Given an integer n, output |n|."),
             _two_ints_first, lambda s, p: str(abs(int(s))), ONE_INT.format(expr="abs(n)")),
    Template("digit_sum", ("Read a non-negative integer and print the sum of its digits.",
                           "Given a non-negative integer, output the total of its decimal digits."),
             lambda rng, p: f"{rng.randint(0, 99999)}\n", lambda s, p: str(sum(map(int, s.strip()))),
             "s = input()\nprint(sum(int(c) for c in s))"),
    Template("last_char", ("Read a word and print its last letter.",
                           "Given a word, output the final character of it."),
             _word, lambda s, p: s.strip()[-1], "s = input()\nprint(s[-1])"),
    Template("palindrome", ("Read a word. Print YES if it reads the same backwards, otherwise print NO.",
                            "Given a word, output YES when it is a palindrome and NO otherwise."),
             _maybe_palindrome,
             lambda s, p: "YES" if s.strip() == s.strip()[::-1] else "NO",
             "s = input()\nif s == s[::-1]:\n    print(\"YES\")\nelse:\n    print(\"NO\")"),
    Template("count_down", ("Read n and print the numbers n down to 1, one per line.",
                            "Given a positive integer n, output n, n - 1, ..., 1 each on its own line."),
             lambda rng, p: f"{rng.randint(1, 12)}\n",
             lambda s, p: "\n".join(str(i) for i in range(int(s), 0, -1)),
             "n = int(input())\nfor i in range(n, 0, -1):\n    print(i)"),
    Template("add_const", ("Read an integer n and print n + {p}.",
                           "Given an integer, output that integer plus {p}."),
             _one_int, lambda s, p: str(int(s) + p), ONE_INT.format(expr="n + {p}"),
             *_split_params(0)),
    Template("times_const", ("Read an integer n and print n * {p}.",
                             "Given an integer, output it multiplied by {p}."),
             _one_int, lambda s, p: str(int(s) * p), ONE_INT.format(expr="n * {p}"),
             *_split_params(1)),
    Template("mod_const", ("Read a non-negative integer n and print n modulo {p}.",
                           "Given a non-negative integer, output its remainder when divided by {p}."),
             _one_int, lambda s, p: str(int(s) % p), ONE_INT.format(expr="n % {p}"),
             *_split_params(2)),
    Template("repeat_word", ("Read a word and print it {p} times on one line, separated by spaces.",
                             "Given a word, output {p} copies of it separated by single spaces."),
             _word, lambda s, p: " ".join([s.strip()] * p), "w = input()\nprint(\" \".join([w] * {p}))",
             *_split_params(3)),
    Template("subtract_const", ("Read an integer n and print n - {p}.",
                                "Given an integer, output that integer minus {p}."),
             _one_int, lambda s, p: str(int(s) - p), ONE_INT.format(expr="n - {p}"),
             *_split_params(4)),
    Template("div_const", ("Read a non-negative integer n and print n // {p} (integer division).",
                           "Given a non-negative integer, output how many whole times {p} fits into it."),
             _one_int, lambda s, p: str(int(s) // p), ONE_INT.format(expr="n // {p}"),
             *_split_params(5)),
    Template("greater_than", ("Read an integer n. Print YES if n is greater than {p}, otherwise print NO.",
                              "Given an integer, output YES when it exceeds {p} and NO otherwise."),
             lambda rng, p: f"{rng.randint(p - 5, p + 5)}\n", lambda s, p: "YES" if int(s) > p else "NO",
             "n = int(input())\nif n > {p}:\n    print(\"YES\")\nelse:\n    print(\"NO\")",
             *_split_params(6)),
    Template("divisible", ("Read an integer n. Print YES if n is divisible by {p}, otherwise print NO.",
                           "Given an integer, output YES when {p} divides it and NO otherwise."),
             lambda rng, p: f"{rng.randint(0, 20) * p if rng.random() < 0.5 else rng.randint(0, 200)}\n",
             lambda s, p: "YES" if int(s) % p == 0 else "NO",
             "n = int(input())\nif n % {p} == 0:\n    print(\"YES\")\nelse:\n    print(\"NO\")",
             *_split_params(7)),
)


def _problem(template: Template, p: int, phrasing_index: int, split: str) -> Problem:
    problem_id = f"tiny/{template.name}/p{p}/v{phrasing_index}"
    rng = random.Random(zlib.crc32(problem_id.encode()))
    inputs: list[str] = []
    for _ in range(50 * TESTS_PER_PROBLEM):  # some generators repeat inputs; keep distinct ones
        text = template.make_input(rng, p)
        if text not in inputs:
            inputs.append(text)
        if len(inputs) == TESTS_PER_PROBLEM:
            break
    tests = [TestCase(text, template.solve(text, p) + "\n") for text in inputs]
    statement = template.phrasings[phrasing_index].format(p=p)
    return Problem(
        id=problem_id, kind="stdio", tests=tests, time_limit_s=2.0, memory_limit_mb=256,
        metadata={"question_content": f"{statement} {IO_NOTE}", "reference_solution": template.solution.format(p=p),
                  "template": template.name, "param": p, "split": split, "difficulty": "easy", "platform": "tiny"})


def make_problems(split: str) -> list[Problem]:
    """All problems of `split` ("train" or "held_out"), in a fixed order."""
    if split not in ("train", "held_out"):
        raise ValueError(f"split must be 'train' or 'held_out', got {split!r}")
    problems = []
    for template in TEMPLATES:
        params = template.params if split == "train" else template.held_out_params
        for p in params:
            for index in range(len(template.phrasings)):
                problems.append(_problem(template, p, index, split))
    return problems


def write_problems(path: str | Path, split: str) -> Path:
    path = Path(path)
    write_atomic(path, "".join(json.dumps(p.to_dict()) + "\n" for p in make_problems(split)))
    return path


def reference_response(problem: Problem) -> str:
    """The answer a model should give: the reference solution in a fenced Python block."""
    return f"```python\n{problem.metadata['reference_solution']}\n```"


def sft_responses(problem: Problem) -> list[str]:
    """The answers the warm start teaches for `problem`: its reference response."""
    return [reference_response(problem)]


def tokenizer_corpus() -> list[str]:
    """Training statements and answers, plus every printable ASCII character once, so that held-out
    statements (unseen numbers) still tokenize into pieces rather than bytes."""
    texts = [PRINTABLE]
    for problem in make_problems("train"):
        texts += [problem.metadata["question_content"], reference_response(problem)]
    return texts
