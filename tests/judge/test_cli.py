"""mc-judge through its console script: JSON output, exit codes, error messages that say where."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parents[2] / "judge" / "samples"
_SCRIPT = Path(sys.executable).parent / "mc-judge"
MC_JUDGE = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "judge.cli"]


def mc_judge(*args, timeout=120):
    return subprocess.run([*MC_JUDGE, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def test_run_prints_one_json_result_and_exits_zero_for_any_verdict():
    ok = mc_judge("run", "--problem", SAMPLES / "sum_two.json", "--code", SAMPLES / "solutions/sum_two/accepted.py")
    assert ok.returncode == 0, ok.stderr
    row = json.loads(ok.stdout)
    assert row["verdict"] == "AC" and row["passed"] == row["total"] == 8 and len(row["tests"]) == 8
    wrong = mc_judge("run", "--problem", SAMPLES / "two_sum.json", "--code", SAMPLES / "solutions/two_sum/wrong_order.py")
    assert wrong.returncode == 0 and json.loads(wrong.stdout)["verdict"] == "WA"


def test_run_all_tests_and_kattis_folder_and_language_option(tmp_path):
    code = tmp_path / "solution.txt"
    code.write_text("n, s = map(int, input().split())\nprint(1, 2)\n")
    done = mc_judge("run", "--problem", SAMPLES / "pair_sum", "--code", code, "--language", "python", "--all-tests")
    assert done.returncode == 0, done.stderr
    row = json.loads(done.stdout)
    assert row["verdict"] == "WA" and len(row["tests"]) == row["total"] == 5


def _problem_file(tmp_path, row):
    path = tmp_path / "problem.json"
    path.write_text(row if isinstance(row, str) else json.dumps(row))
    return path


@pytest.mark.parametrize("problem_row, code_name, extra, expected_message", [
    (None, "a.py", [], "no such file"),
    ("{not json", "a.py", [], "not valid JSON"),
    ({"id": "x", "kind": "stdio"}, "a.py", [], "'tests'"),
    ({"id": "x", "kind": "stdin", "tests": [{"input": "", "output": ""}]}, "a.py", [], "kind"),
    ({"id": "x", "kind": "stdio", "tests": [{"input": ""}]}, "a.py", [], "test 0"),
    ({"id": "x", "kind": "stdio", "tests": [{"input": "", "output": ""}]}, "a.py", ["--language", "rust"], "unknown language"),
    ({"id": "x", "kind": "stdio", "tests": [{"input": "", "output": ""}]}, "a.rs", [], "--language"),
    ({"id": "x", "kind": "stdio", "tests": [{"input": "", "output": ""}]}, "missing.py", [], "missing.py: no such file"),
])
def test_run_bad_input_exits_nonzero_with_a_message_naming_the_problem(tmp_path, problem_row, code_name, extra, expected_message):
    problem = tmp_path / "absent.json" if problem_row is None else _problem_file(tmp_path, problem_row)
    if code_name != "missing.py":
        (tmp_path / code_name).write_text("print(1)\n")
    done = mc_judge("run", "--problem", problem, "--code", tmp_path / code_name, *extra)
    assert done.returncode == 2
    assert done.stdout == ""
    assert expected_message in done.stderr
    if expected_message in ("not valid JSON", "'tests'", "kind", "test 0"):
        assert str(problem) in done.stderr


def _write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_batch_writes_one_row_per_submission(tmp_path):
    problems = _write_jsonl(tmp_path / "p.jsonl", [json.loads((SAMPLES / "sum_two.json").read_text()),
                                                   json.loads((SAMPLES / "two_sum.json").read_text())])
    solutions = SAMPLES / "solutions"
    rows = [
        {"id": "a", "problem_id": "sum_two", "code": (solutions / "sum_two/accepted.py").read_text(), "language": "python"},
        {"id": "b", "problem_id": "sum_two", "code": "print(0)\n", "language": "python"},
        {"id": "c", "problem_id": "two_sum", "code": (solutions / "two_sum/accepted.py").read_text()},
        {"id": "d", "problem_id": "sum_two", "code": (solutions / "sum_two/compile_error.cpp").read_text(), "language": "cpp"},
    ]
    submissions = _write_jsonl(tmp_path / "s.jsonl", rows)
    out = tmp_path / "r.jsonl"
    done = mc_judge("batch", "--problems", problems, "--submissions", submissions, "--out", out, "--workers", 2)
    assert done.returncode == 0, done.stderr
    results = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert {k: v["verdict"] for k, v in results.items()} == {"a": "AC", "b": "WA", "c": "AC", "d": "CE"}
    assert all({"verdict", "passed", "total", "tests", "wall_s"} <= set(r) for r in results.values())
    assert not (tmp_path / "r.jsonl.partial").exists()


@pytest.mark.parametrize("bad_row, expected_message", [
    ("{oops", "s.jsonl:2: not valid JSON"),
    ({"id": "z", "problem_id": "nope", "code": "print(1)"}, "s.jsonl:2: problem_id 'nope'"),
    ({"id": "z", "problem_id": "sum_two"}, "s.jsonl:2: missing key 'code'"),
    ({"id": "z", "problem_id": "sum_two", "code": "x", "language": "cobol"}, "s.jsonl:2: key 'language'"),
])
def test_batch_bad_submission_row_is_named_and_nothing_is_judged(tmp_path, bad_row, expected_message):
    problems = _write_jsonl(tmp_path / "p.jsonl", [json.loads((SAMPLES / "sum_two.json").read_text())])
    good = {"id": "y", "problem_id": "sum_two", "code": "print(1)"}
    submissions = _write_jsonl(tmp_path / "s.jsonl", [good, bad_row])
    out = tmp_path / "r.jsonl"
    done = mc_judge("batch", "--problems", problems, "--submissions", submissions, "--out", out)
    assert done.returncode == 2 and expected_message in done.stderr, done.stderr
    assert not out.exists()


def test_batch_problem_row_error_names_the_line(tmp_path):
    problems = _write_jsonl(tmp_path / "p.jsonl", [json.loads((SAMPLES / "sum_two.json").read_text()),
                                                   {"id": "bad", "kind": "stdio", "tests": "nope"}])
    submissions = _write_jsonl(tmp_path / "s.jsonl", [{"id": "y", "problem_id": "sum_two", "code": "print(1)"}])
    done = mc_judge("batch", "--problems", problems, "--submissions", submissions, "--out", tmp_path / "r.jsonl")
    assert done.returncode == 2 and "p.jsonl:2" in done.stderr, done.stderr


@pytest.mark.skipif(shutil.which("g++") is None, reason="the demo includes C++ samples")
def test_demo_judges_the_bundled_samples_as_expected():
    done = mc_judge("demo", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "10/10 verdicts as expected" in done.stdout
    for verdict in ("AC", "WA", "CE", "TLE"):
        assert f" {verdict} " in done.stdout
