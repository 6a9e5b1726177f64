"""The instruction that tells a model how its answer will be run, per problem kind; without it a mix of
stdin/stdout and function-call problems leaves the model guessing (and failing on format alone)."""
from __future__ import annotations

from judge.problem import Problem

STDIO = ("Write a complete Python program that reads the input from standard input and writes the answer to "
         "standard output. Give the program in one ```python code block.")
FUNCTION = ("Write the Python function `{fn_name}` so that it returns the answer; do not read input or print. "
            "{starter}Give the code in one ```python code block.")


def format_instruction(problem: Problem, starter_code: str | None) -> str:
    if problem.kind == "stdio":
        return STDIO
    starter = "Start from the starter code given below and keep its signature. " if starter_code else ""
    return FUNCTION.format(fn_name=problem.fn_name, starter=starter)
