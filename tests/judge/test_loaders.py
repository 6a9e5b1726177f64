"""Dataset row loaders (LiveCodeBench, TACO/APPS, CodeContests) and the load_problems dispatcher.

The fixtures in fixtures_formats/ are rows in each dataset's real format; bad rows are written per test.
"""
import base64
import json
import pickle
import zlib
from pathlib import Path

import pytest

from judge.compare import values_match
from judge.loaders import FORMATS, load_problems
from judge.loaders.livecodebench import decode_compressed
from judge.problem import ProblemError

FIXTURES = Path(__file__).parent / "fixtures_formats"


def lcb_compress(cases: list[dict]) -> str:
    """LiveCodeBench's own encoding of private test cases."""
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(cases)))).decode("utf-8")


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def lcb_row(**changes) -> dict:
    row = json.loads((FIXTURES / "livecodebench.jsonl").read_text().splitlines()[0])
    row.update(changes)
    return row


# ---------------------------------------------------------------- LiveCodeBench


def test_livecodebench_rows_become_stdio_and_function_problems():
    stdio, function, compressed = load_problems(FIXTURES / "livecodebench.jsonl", "livecodebench")

    assert (stdio.id, stdio.kind, stdio.fn_name) == ("abc999_a", "stdio", None)
    assert [(t.input, t.output) for t in stdio.tests] == [("1 2\n", "3\n"), ("10 20\n", "30\n"), ("-5 5\n", "0\n")]
    assert stdio.metadata["contest_date"] == "2024-08-03"
    assert stdio.metadata["platform"] == "atcoder" and stdio.metadata["difficulty"] == "easy"
    assert stdio.metadata["question_title"] == "Sum of Two"
    assert stdio.metadata["question_content"].startswith("Read A and B")
    assert stdio.metadata["public_tests"] == 1
    assert stdio.metadata["dataset"] == "livecodebench"

    assert (function.kind, function.fn_name) == ("function", "maximumGap")
    assert function.metadata["starter_code"].startswith("class Solution:")
    # The private tests of this row are compressed; public first, then the decoded private ones.
    assert [(t.input, t.output) for t in function.tests] == [
        ("[3, 6, 9, 1]", "3"), ("[10]", "0"), ("[1, 10000000]", "9999999"),
    ]
    assert [t.output for t in compressed.tests] == ["cd\nab\n", "x\n"]


def test_compressed_private_tests_decode_exactly(tmp_path):
    cases = [{"input": f"{i}\n" * 50, "output": f"{i * i}\n", "testtype": "stdin"} for i in range(200)]
    path = write_rows(tmp_path / "lcb.jsonl", [lcb_row(private_test_cases=lcb_compress(cases))])
    (problem,) = load_problems(path, "livecodebench")
    assert [(t.input, t.output) for t in problem.tests[1:]] == [(c["input"], c["output"]) for c in cases]
    assert problem.metadata["public_tests"] == 1


class _Exploit:
    """A pickle that runs code when loaded: writes a marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",)


def test_a_malicious_compressed_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Exploit(marker))
    pickle.loads(payload)  # the payload is real: a plain unpickler runs it
    assert marker.exists()
    marker.unlink()

    field = base64.b64encode(zlib.compress(payload)).decode()
    path = write_rows(tmp_path / "lcb.jsonl", [lcb_row(private_test_cases=field)])
    with pytest.raises(ProblemError) as error:
        load_problems(path, "livecodebench")
    message = str(error.value)
    assert str(path) in message and "row 1" in message and "'private_test_cases'" in message
    assert "refused" in message and "builtins.exec" in message
    assert not marker.exists()


@pytest.mark.parametrize(
    "field, reason",
    [
        (base64.b64encode(zlib.compress(pickle.dumps([1, 2]))).decode(), "not a JSON string"),
        (base64.b64encode(zlib.compress(pickle.dumps(json.dumps([])))[:-6]).decode(), "truncated"),
        ("not base64 at all!", "not base64"),
        (base64.b64encode(b"plain bytes, not zlib").decode(), "not zlib"),
    ],
)
def test_undecodable_private_fields_say_why(field, reason):
    with pytest.raises(ValueError, match=reason):
        decode_compressed(field)


@pytest.mark.parametrize(
    "changes, key, words",
    [
        ({"question_id": None}, "question_id", "missing"),
        ({"public_test_cases": "[{\"input\": \"1\"}"}, "public_test_cases", "neither a JSON list"),
        ({"public_test_cases": json.dumps([{"input": "1", "output": 2, "testtype": "stdin"}])},
         "public_test_cases", "test 0"),
        ({"public_test_cases": json.dumps([{"input": "1", "output": "2", "testtype": "interactive"}])},
         "public_test_cases", "testtype"),
        ({"public_test_cases": json.dumps([{"input": "[1]", "output": "1", "testtype": "functional"}]),
          "private_test_cases": ""}, "metadata", "func_name"),
        ({"public_test_cases": json.dumps([{"input": "[1]", "output": "1", "testtype": "functional"}])},
         "public_test_cases", "mixes stdin and functional"),
        ({"contest_date": "last tuesday"}, "contest_date", "ISO date"),
        ({"metadata": "[1]"}, "metadata", "JSON object"),
    ],
)
def test_bad_livecodebench_rows_name_file_row_and_key(tmp_path, changes, key, words):
    path = write_rows(tmp_path / "lcb.jsonl", [lcb_row(), lcb_row(**changes)])
    with pytest.raises(ProblemError) as error:
        load_problems(path, "livecodebench")
    message = str(error.value)
    assert f"{path}, row 2" in message and f"key {key!r}" in message and words in message


def test_contest_dates_in_pandas_epoch_milliseconds(tmp_path):
    path = write_rows(tmp_path / "lcb.jsonl", [lcb_row(contest_date=1722643200000)])
    assert load_problems(path, "livecodebench")[0].metadata["contest_date"] == "2024-08-03"


def test_a_row_that_is_not_json_names_its_line(tmp_path):
    path = tmp_path / "lcb.jsonl"
    path.write_text(json.dumps(lcb_row()) + "\n\n{oops\n")
    with pytest.raises(ProblemError, match=r"lcb\.jsonl, row 3: not valid JSON"):
        load_problems(path, "livecodebench")


# ---------------------------------------------------------------- TACO / APPS


def test_taco_stdio_rows_join_lines_and_read_limits():
    stdio, call = load_problems(FIXTURES / "taco.jsonl", "taco")
    assert stdio.kind == "stdio"
    assert [(t.input, t.output) for t in stdio.tests] == [("3\n1 2 3\n", "6\n"), ("2\n5 5", "10")]
    assert (stdio.time_limit_s, stdio.memory_limit_mb) == (2.0, 256)
    assert stdio.metadata["platform"] == "codeforces" and stdio.metadata["difficulty"] == "EASY"
    assert stdio.metadata["contest_date"] == "2021-03-02"
    assert stdio.metadata["question_title"] == "Sum Up"
    assert stdio.id == "taco-1" and call.id == "taco-2"  # TACO rows have no id: file and row
    assert stdio.metadata["dataset"] == "taco"


def test_taco_call_based_rows_accept_wrapped_and_bare_results_as_their_grader_does():
    _, call = load_problems(FIXTURES / "taco.jsonl", "taco")
    assert (call.kind, call.fn_name) == ("function", "sum_arrays")
    assert call.tests[0].input == "[1, 2]\n[3, 4]"  # one JSON argument per line
    expected = json.loads(call.tests[0].output)
    assert expected == [[4, 6]]
    assert values_match(expected, [4, 6], call.comparison)
    assert values_match(expected, [[4, 6]], call.comparison)
    assert not values_match(expected, [4, 7], call.comparison)
    assert (call.time_limit_s, call.memory_limit_mb) == (6.0, 1024)  # unstated: the judge's defaults
    assert call.metadata["platform"] == "codewars"


def test_apps_rows_keep_their_problem_id():
    call, stdio = load_problems(FIXTURES / "apps.jsonl", "apps")
    assert (call.id, call.kind, call.fn_name) == ("4242", "function", "isPalindrome")
    assert [(t.input, t.output) for t in call.tests] == [('"aba"', "true"), ('"ab"', "false")]
    assert values_match(json.loads(call.tests[1].output), False, call.comparison)
    assert not values_match(json.loads(call.tests[1].output), 0, call.comparison)
    assert (stdio.id, stdio.kind, stdio.tests[0].output) == ("17", "stdio", "9\n")
    assert stdio.metadata["difficulty"] == "introductory" and stdio.metadata["platform"] == "codeforces"
    assert stdio.metadata["dataset"] == "apps"


@pytest.mark.parametrize(
    "input_output, words",
    [
        ({"inputs": ["1\n", "2\n"], "outputs": ["1\n"]}, "2 inputs but 1 outputs"),
        ({"inputs": ["1\n"]}, "needs lists"),
        ({"fn_name": "f", "inputs": ["1"], "outputs": [[1]]}, "inputs[0] must be the list of arguments"),
        ({"inputs": [5], "outputs": ["5"]}, "inputs[0] must be a string or a list of lines"),
        ({"inputs": [], "outputs": []}, "has no tests"),
    ],
)
def test_bad_taco_rows_name_file_row_and_key(tmp_path, input_output, words):
    good = {"question": "q", "input_output": json.dumps({"inputs": ["1\n"], "outputs": ["1\n"]})}
    bad = {"question": "q", "input_output": json.dumps(input_output)}
    path = write_rows(tmp_path / "taco.jsonl", [good, bad])
    with pytest.raises(ProblemError) as error:
        load_problems(path, "taco")
    message = str(error.value)
    assert f"{path}, row 2" in message and words in message
    if words != "has no tests":
        assert "key 'input_output'" in message


def test_taco_row_without_input_output_names_the_key(tmp_path):
    path = write_rows(tmp_path / "taco.jsonl", [{"question": "q", "input_output": ""}])
    with pytest.raises(ProblemError, match=r"row 1: key 'input_output': not a valid JSON string"):
        load_problems(path, "taco")


# ---------------------------------------------------------------- CodeContests


def test_codecontests_rows_read_all_test_groups_and_limits():
    cf, aizu = load_problems(FIXTURES / "codecontests.jsonl", "codecontests")
    assert cf.id == "1548_C. The Three Little Numbers" and cf.kind == "stdio"
    assert [t.output for t in cf.tests] == ["6\n", "8\n", "0\n", "1000\n"]  # public, private, generated
    assert (cf.metadata["public_tests"], cf.metadata["private_tests"], cf.metadata["generated_tests"]) == (1, 2, 1)
    assert (cf.time_limit_s, cf.memory_limit_mb) == (2.5, 256)
    assert (cf.metadata["source"], cf.metadata["platform"]) == ("CODEFORCES", "codeforces")
    assert (cf.metadata["difficulty"], cf.metadata["cf_rating"]) == ("C", 1700)
    assert cf.metadata["question_content"] == "Print the product of three numbers."
    assert (aizu.metadata["source"], aizu.metadata["difficulty"]) == ("AIZU", "UNKNOWN_DIFFICULTY")
    assert (aizu.time_limit_s, aizu.memory_limit_mb) == (6.0, 1024)  # unknown: the judge's defaults
    assert aizu.metadata["cf_rating"] is None


def test_codecontests_enum_names_are_accepted_and_letter_grades_skip_18(tmp_path):
    row = json.loads((FIXTURES / "codecontests.jsonl").read_text().splitlines()[0])
    path = write_rows(tmp_path / "cc.jsonl", [dict(row, source="ATCODER", difficulty=19)])
    (problem,) = load_problems(path, "codecontests")
    assert (problem.metadata["source"], problem.metadata["difficulty"]) == ("ATCODER", "L")


@pytest.mark.parametrize(
    "changes, key, words",
    [
        ({"difficulty": 18}, "difficulty", "unknown value 18"),
        ({"source": 5}, "source", "unknown value 5"),
        ({"input_file": "input.txt"}, "input_file", "stdin/stdout only"),
        ({"public_tests": {"input": ["1\n"], "output": []}}, "public_tests", "1 inputs but 0 outputs"),
        ({"time_limit": 2}, "time_limit", "Duration"),
        ({"name": None}, "name", "missing"),
    ],
)
def test_bad_codecontests_rows_name_file_row_and_key(tmp_path, changes, key, words):
    row = json.loads((FIXTURES / "codecontests.jsonl").read_text().splitlines()[0])
    path = write_rows(tmp_path / "cc.jsonl", [row, dict(row, **changes)])
    with pytest.raises(ProblemError) as error:
        load_problems(path, "codecontests")
    message = str(error.value)
    assert f"{path}, row 2" in message and f"key {key!r}" in message and words in message


# ---------------------------------------------------------------- load_problems


def test_normalized_problems_by_extension():
    (single,) = load_problems(FIXTURES / "normalized.json")
    assert (single.id, single.time_limit_s, single.metadata["dataset"]) == ("echo", 2.0, "normalized")
    many = load_problems(FIXTURES / "normalized.jsonl")
    assert [(p.id, p.kind) for p in many] == [("echo", "stdio"), ("add", "function")]
    assert load_problems(FIXTURES / "normalized.jsonl", "normalized")[1].fn_name == "add"


def test_dataset_rows_from_a_json_array(tmp_path):
    rows = [json.loads(line) for line in (FIXTURES / "apps.jsonl").read_text().splitlines()]
    path = tmp_path / "apps.json"
    path.write_text(json.dumps(rows))
    assert [p.id for p in load_problems(path, "apps")] == ["4242", "17"]
    path.write_text(json.dumps(rows[:1] + [dict(rows[1], input_output="{}")]))
    with pytest.raises(ProblemError, match=r"apps\.json, row 2: key 'input_output'"):
        load_problems(path, "apps")


def test_unknown_format_lists_the_valid_ones():
    with pytest.raises(ProblemError) as error:
        load_problems(FIXTURES / "taco.jsonl", "leetcode")
    assert "'leetcode'" in str(error.value)
    assert all(fmt in str(error.value) for fmt in FORMATS)


def test_format_and_path_kind_must_agree(tmp_path):
    with pytest.raises(ProblemError, match="only the 'kattis' format reads"):
        load_problems(FIXTURES / "kattis" / "hello", "taco")
    with pytest.raises(ProblemError, match="reads a problem package folder, not a file"):
        load_problems(FIXTURES / "taco.jsonl", "kattis")
    with pytest.raises(ProblemError, match="no such file or folder"):
        load_problems(tmp_path / "missing.jsonl")
    (tmp_path / "rows.csv").write_text("a,b\n")
    with pytest.raises(ProblemError, match="pass fmt"):
        load_problems(tmp_path / "rows.csv")
    with pytest.raises(ProblemError, match="array of rows"):
        load_problems(FIXTURES / "normalized.json", "taco")


def test_dataset_pipeline_fields_load_into_metadata_and_other_keys_are_named(tmp_path):
    from judge.problem import Problem, ProblemError
    row = {"id": "p", "kind": "stdio", "tests": [{"input": "1\n", "output": "1\n"}],
           "source": "mine", "release_date": "2025-01-02", "platform": "atcoder", "difficulty": "hard",
           "statement": "Echo.", "starter_code": None, "reference_solutions": [{"language": "python", "code": "print(input())"}],
           "metadata": {"x": 1}}
    problem = Problem.from_dict(row)
    assert problem.metadata["platform"] == "atcoder" and problem.metadata["x"] == 1
    assert problem.metadata["reference_solutions"][0]["language"] == "python"
    with pytest.raises(ProblemError, match=r"row 3: unknown problem keys \['statment'\]"):
        Problem.from_dict({**row, "statment": "typo"}, where="row 3")
