"""LiveCodeBench code_generation rows (livecodebench/code_generation and code_generation_lite).

A row: question_title, question_content, platform, question_id, contest_id, contest_date, starter_code,
difficulty, public_test_cases, private_test_cases, metadata. Test cases are a JSON string of
[{"input", "output", "testtype": "stdin" | "functional"}]; the private ones may instead be compressed as
base64(zlib(pickle(json_string))), which is how LiveCodeBench's own loader reads them. Functional tests
already use the judge's function-call form (newline-separated JSON arguments, a JSON result), and
metadata["func_name"] names the function.
"""
from __future__ import annotations

import base64
import binascii
import io
import json
import pickle
import zlib
from typing import Any

from judge.loaders.rows import RowRef, build_problem, iso_date, json_field, required
from judge.problem import Problem, TestCase

_KIND_OF_TESTTYPE = {"stdin": "stdio", "functional": "function"}

# A decompressed private test field larger than this is refused rather than exhausting memory.
MAX_DECOMPRESSED_BYTES = 1 << 30


class _StringOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain data only: any class or function reference (the way a pickle runs code) is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refused to load {module}.{name}: only a pickled string is allowed")


def decode_compressed(text: str) -> str:
    """The JSON string inside LiveCodeBench's compressed form; raises ValueError for anything else."""
    try:
        compressed = base64.b64decode(text, validate=True)
    except binascii.Error as e:
        raise ValueError(f"not base64 ({e})") from None
    inflater = zlib.decompressobj()
    try:
        pickled = inflater.decompress(compressed, MAX_DECOMPRESSED_BYTES)
    except zlib.error as e:
        raise ValueError(f"not zlib-compressed ({e})") from None
    if inflater.unconsumed_tail:
        raise ValueError(f"decompresses to more than {MAX_DECOMPRESSED_BYTES} bytes")
    if not inflater.eof:
        raise ValueError("the zlib stream is truncated")
    try:
        value = _StringOnlyUnpickler(io.BytesIO(pickled)).load()
    except Exception as e:  # untrusted bytes fail in many ways (EOFError, KeyError, ...): all mean "refused"
        raise ValueError(f"unsafe or invalid pickle ({e})") from None
    if not isinstance(value, str):
        raise ValueError(f"the pickle holds a {type(value).__name__}, not a JSON string")
    return value


def _test_cases(row: dict[str, Any], key: str, ref: RowRef) -> list[dict[str, Any]]:
    value = row.get(key)
    if key == "private_test_cases" and value in (None, ""):
        return []
    value = required(row, key, ref)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            try:
                value = json.loads(decode_compressed(value))
            except (ValueError, json.JSONDecodeError) as e:
                raise ref.error(key, f"neither a JSON list nor LiveCodeBench's compressed form: {e}") from None
    if not isinstance(value, list):
        raise ref.error(key, f"expected a list of test cases, got {type(value).__name__}")
    for index, case in enumerate(value):
        if not (isinstance(case, dict) and isinstance(case.get("input"), str) and isinstance(case.get("output"), str)):
            raise ref.error(key, f"test {index} must be an object with string 'input' and 'output'")
        if case.get("testtype") not in _KIND_OF_TESTTYPE:
            raise ref.error(key, f"test {index}: testtype must be one of {sorted(_KIND_OF_TESTTYPE)}, "
                                 f"got {case.get('testtype')!r}")
    return value


def problem_from_row(row: dict[str, Any], ref: RowRef) -> Problem:
    public = _test_cases(row, "public_test_cases", ref)
    private = _test_cases(row, "private_test_cases", ref)
    kinds = {_KIND_OF_TESTTYPE[case["testtype"]] for case in public + private}
    if len(kinds) > 1:
        raise ref.error("public_test_cases", "mixes stdin and functional tests; one problem has one kind")
    kind = kinds.pop() if kinds else "stdio"
    metadata = json_field(row, "metadata", ref) if row.get("metadata") not in (None, "") else {}
    if not isinstance(metadata, dict):
        raise ref.error("metadata", f"expected a JSON object, got {type(metadata).__name__}")
    fn_name = metadata.get("func_name")
    if kind == "function" and not fn_name:
        raise ref.error("metadata", "functional tests need metadata.func_name, the function to call")
    return build_problem(
        ref,
        id=str(required(row, "question_id", ref)),
        kind=kind,
        tests=[TestCase(case["input"], case["output"]) for case in public + private],
        fn_name=fn_name if kind == "function" else None,
        metadata={
            "platform": row.get("platform"),
            "difficulty": row.get("difficulty"),
            "contest_id": row.get("contest_id"),
            "contest_date": iso_date(row.get("contest_date"), "contest_date", ref),
            "question_title": row.get("question_title"),
            "question_content": row.get("question_content"),
            "starter_code": row.get("starter_code") or "",
            "public_tests": len(public),
        },
    )
