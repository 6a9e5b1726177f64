"""Kattis/ICPC problem package folders: tests, limits, validator flags, custom checkers and the errors."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from judge.compare import outputs_match
from judge.loaders import load_problems
from judge.loaders.kattis import load_package
from judge.problem import ProblemError

KATTIS = Path(__file__).parent / "fixtures_formats" / "kattis"


def test_package_tests_limits_and_default_validator_flags():
    problem = load_package(KATTIS / "hello")
    assert (problem.id, problem.kind, problem.checker) == ("hello", "stdio", None)
    # Samples first, then secret groups recursively, each sorted by path.
    assert [t.input for t in problem.tests] == ["0 0 3 4\n", "0 0 1 1\n", "1 1 1 1\n", "0 0 6 8\n", "0 0 0 2\n"]
    assert [t.output for t in problem.tests] == ["5.0\n", "1.414214\n", "0.0\n", "10.0\n", "2.0\n"]
    assert problem.time_limit_s == 2.5  # .timelimit
    assert problem.memory_limit_mb == 512  # limits.memory
    # float_tolerance 1e-4; the default validator ignores case unless told case_sensitive.
    assert (problem.comparison.abs_tol, problem.comparison.rel_tol) == (1e-4, 1e-4)
    assert outputs_match("1.414214\n", "1.41421356", problem.comparison)
    assert not outputs_match("1.414214\n", "1.4145", problem.comparison)
    assert problem.comparison.case_insensitive
    assert problem.metadata["question_title"] == "Hello Distance"
    assert problem.metadata["source"] == "NWERC 2099"
    assert "distance between two points" in problem.metadata["question_content"]
    assert problem.metadata["public_tests"] == 2


def test_load_problems_reads_a_package_folder():
    (problem,) = load_problems(KATTIS / "hello")
    assert problem.id == "hello" and problem.metadata["dataset"] == "kattis"
    assert load_problems(KATTIS / "hello", "kattis")[0].tests == problem.tests


def test_without_float_flags_numbers_are_not_given_a_tolerance():
    problem = load_package(KATTIS / "anyorder")
    assert (problem.comparison.abs_tol, problem.comparison.rel_tol) == (0.0, 0.0)
    assert (problem.time_limit_s, problem.memory_limit_mb) == (6.0, 256)
    assert problem.metadata["question_title"] == "Any Order"  # a name per language: English


def test_cpp_validator_with_its_header_inlined_compiles_and_follows_the_kattis_contract(tmp_path):
    checker = load_package(KATTIS / "anyorder").checker
    assert checker.language == "cpp"
    assert '#include "validate.h"' not in checker.source and "ACCEPTED = 42" in checker.source
    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed")
    source = tmp_path / "validator.cpp"
    source.write_text(checker.source)
    binary = tmp_path / "validator"
    subprocess.run(["g++", "-std=c++17", "-O0", "-o", binary, source], check=True, capture_output=True)
    (tmp_path / "input").write_text("3\n")
    (tmp_path / "answer").write_text("1 2 3\n")
    feedback = tmp_path / "feedback"
    feedback.mkdir()

    def verdict(output: str) -> int:
        command = [binary, tmp_path / "input", tmp_path / "answer", feedback]
        return subprocess.run(command, input=output, text=True).returncode

    assert verdict("3 1 2\n") == 42
    assert verdict("1 2 2\n") == 43


def test_single_file_python_validator_and_case_sensitive_flag(tmp_path):
    problem = load_package(KATTIS / "yesno")
    assert problem.checker.language == "python"
    assert not problem.comparison.case_insensitive
    script = tmp_path / "check.py"
    script.write_text(problem.checker.source)
    (tmp_path / "answer").write_text("YES\n")
    (tmp_path / "input").write_text("4\n")

    def verdict(output: str) -> int:
        command = [sys.executable, script, tmp_path / "input", tmp_path / "answer", tmp_path]
        return subprocess.run(command, input=output, text=True).returncode

    assert verdict("yes\n") == 42
    assert verdict("no\n") == 43


def make_package(root: Path, yaml_text: str = "name: t\n", tests: dict[str, str] | None = None) -> Path:
    root.mkdir()
    (root / "problem.yaml").write_text(yaml_text)
    for name, text in (tests if tests is not None else {"sample/1.in": "1\n", "sample/1.ans": "1\n"}).items():
        path = root / "data" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_folder_without_data_is_not_a_package(tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    with pytest.raises(ProblemError, match=f"{folder}: not a problem package: it has no data/ folder"):
        load_problems(folder)


@pytest.mark.parametrize(
    "yaml_text, tests, words",
    [
        ("name: t\n", {"sample/1.in": "1\n"}, "1.in: no answer file 1.ans"),
        ("name: t\n", {"sample/readme.txt": "no tests\n"}, "has no tests"),
        ("validation: custom\n", None, "asks for custom validation but there is no output_validators/"),
        ("validation: custom interactive\n", None, "is interactive but there is no output_validators/"),
        ("limits: {memory: -5}\n", None, "limits.memory must be a positive number"),
        ("name: [unclosed\n", None, "not valid YAML"),
        ("validator_flags: float_tolerance\n", None, "float_tolerance needs a number"),
    ],
)
def test_package_errors_name_the_folder_or_file(tmp_path, yaml_text, tests, words):
    package = make_package(tmp_path / "broken", yaml_text, tests)
    with pytest.raises(ProblemError) as error:
        load_package(package)
    assert str(package) in str(error.value) and words in str(error.value)


def test_validator_folder_must_hold_one_program(tmp_path):
    package = make_package(tmp_path / "two", "validation: custom\n")
    for name in ("a", "b"):
        (package / "output_validators" / name).mkdir(parents=True)
        (package / "output_validators" / name / "check.py").write_text("raise SystemExit(42)\n")
    with pytest.raises(ProblemError, match=r"expected one output validator folder, found \['a', 'b'\]"):
        load_package(package)
    shutil.rmtree(package / "output_validators" / "b")
    (package / "output_validators" / "a" / "other.cpp").write_text("int main() { return 42; }\n")
    with pytest.raises(ProblemError, match=r"exactly one \.py or \.cpp validator source, found \['check\.py', 'other\.cpp'\]"):
        load_package(package)


def test_bad_timelimit_file(tmp_path):
    package = make_package(tmp_path / "slow")
    (package / ".timelimit").write_text("two seconds\n")
    with pytest.raises(ProblemError, match=r"\.timelimit: expected a number of seconds"):
        load_package(package)


def test_package_2023_layout_output_validator_folder_and_time_limit(tmp_path):
    package = make_package(tmp_path / "new", "name: New\nlimits:\n  time_limit: 3\n",
                           {"sample/a.in": "1\n", "sample/a.ans": "1\n", "secret/b.in": "2\n", "secret/b.ans": "2\n"})
    (package / "output_validator").mkdir()
    (package / "output_validator" / "validator.py").write_text("raise SystemExit(42)\n")
    problem = load_package(package)
    assert problem.time_limit_s == 3.0
    assert problem.checker.language == "python" and problem.checker.source == "raise SystemExit(42)\n"
    assert [t.input for t in problem.tests] == ["1\n", "2\n"]
