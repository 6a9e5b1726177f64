"""mc-judge audit: agreement with the labelled submissions of problem packages written here, through main().

Two packages hold a submission of every label, two deliberately mislabelled ones, one that agrees only with
problemtools' extra time, files the judge does not run, and a label it does not audit: one with the default
validator and no fixed time limit (its accepted submissions set it), one with a Python output validator and
a fixed limit. A third package is broken. One audit serves every test.
"""
import contextlib
import io
import json
from pathlib import Path

import pytest

from judge.audit import AuditReport, write_report
from judge.cli import main

SUM_TESTS = {"sample/1": ("1 2\n", "3\n"), "secret/1": ("10 -4\n", "6\n"), "secret/2": ("7 7\n", "14\n")}
# The answer is the smallest divisor above 1; the validator accepts any divisor above 1.
DIVISOR_TESTS = {"sample/1": ("6\n", "2\n"), "secret/1": ("15\n", "3\n"), "secret/2": ("49\n", "7\n")}
DIVISOR_VALIDATOR = """import sys
n = int(open(sys.argv[1]).read())
try:
    d = int(sys.stdin.read().split()[0])
except (ValueError, IndexError):
    sys.exit(43)
sys.exit(42 if 1 < d <= n and n % d == 0 else 43)
"""
SPIN = "input()\nwhile True:\n    pass\n"
SUM_CPP20 = ("#include <iostream>\n#include <set>\nint main() { long long a, b; std::cin >> a >> b; "
             "std::set<long long> s{a}; std::cout << (s.contains(a) ? a + b : 0) << '\\n'; }\n")  # set::contains

SUM_SUBMISSIONS = {
    "accepted/sum.py": "a, b = map(int, input().split())\nprint(a + b)\n",
    "accepted/sum.cpp": "#include <iostream>\nint main() { long long a, b; std::cin >> a >> b; "
                        "std::cout << a + b << '\\n'; }\n",
    "accepted/Sum.java": "class Sum {}\n",
    "wrong_answer/off_by_one.py": "a, b = map(int, input().split())\nprint(a + b + 1)\n",
    "wrong_answer/actually_correct.py": "a, b = map(int, input().split())\nprint(a + b)\n",  # mislabelled
    "time_limit_exceeded/spin.py": SPIN,
    "run_time_error/exit_3.py": "raise SystemExit(3)\n",
    "brute_force/slow.py": "print(0)\n",
}
DIVISOR_SUBMISSIONS = {
    "accepted/itself.py": "print(int(input()))\n",  # not the answer file's divisor: only the validator accepts it
    # Over the 0.5 s limit on the last test only, and well within twice that: problemtools' "OK with extra time".
    "accepted/slow_on_49.py": "import time\nn = int(input())\nstart = time.process_time()\n"
                              "while n == 49 and time.process_time() - start < 0.7:\n    pass\nprint(n)\n",
    "wrong_answer/one.py": "input()\nprint(1)\n",
    "time_limit_exceeded/spin.py": SPIN,
    # Mislabelled: WA is not TLE.
    "time_limit_exceeded/wrong_not_slow.py": "import sys\ninput()\nprint('gave up', file=sys.stderr)\nprint(1)\n",
    "run_time_error/index_error.py": "input()\nprint([][0])\n",
    "rejected/zero.py": "input()\nprint(0)\n",
}


def write_package(folder: Path, tests: dict, submissions: dict, problem_yaml: str, time_limit: str | None = None):
    for name, (test_input, answer) in tests.items():
        (folder / "data" / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / "data" / f"{name}.in").write_text(test_input)
        (folder / "data" / f"{name}.ans").write_text(answer)
    (folder / "problem.yaml").write_text(problem_yaml)
    if time_limit is not None:
        (folder / ".timelimit").write_text(time_limit)
    for name, code in submissions.items():
        (folder / "submissions" / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / "submissions" / name).write_text(code)


def run_main(*args: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(list(args))
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    root = tmp_path_factory.mktemp("archive")
    write_package(root / "contest" / "sumtwo", SUM_TESTS, SUM_SUBMISSIONS, "name: Sum\n")
    divisor = root / "contest" / "divisor"
    write_package(divisor, DIVISOR_TESTS, DIVISOR_SUBMISSIONS, "name: Divisor\nvalidation: custom\n", "0.5\n")
    (divisor / "output_validators" / "divisor").mkdir(parents=True)
    (divisor / "output_validators" / "divisor" / "validate.py").write_text(DIVISOR_VALIDATOR)
    (root / "broken" / "data" / "secret").mkdir(parents=True)
    (root / "broken" / "data" / "secret" / "1.in").write_text("1\n")  # no 1.ans beside it
    out = root / "reports" / "audit.json"
    out.parent.mkdir()
    code, stdout, stderr = run_main("audit", "--packages", str(root), "--workers", "2", "--out", str(out))
    return root, code, stdout, stderr, json.loads(out.read_text())


def test_agreement_per_label_follows_problemtools_rules(audited):
    _, code, _, _, report = audited
    labels = {label: (row["expected"], row["count"], row["agreed"], row["disagreed"])
              for label, row in report["labels"].items()}
    assert labels == {
        "accepted": ("AC", 4, 4, 0),
        "wrong_answer": ("WA", 3, 2, 1),
        "time_limit_exceeded": ("TLE", 3, 2, 1),
        "run_time_error": ("RTE", 2, 2, 0),
        "rejected": ("not AC", 1, 1, 0),
    }
    assert report["labels"]["accepted"]["verdicts"] == {"AC": 3, "TLE": 1}
    assert (report["packages"], report["submissions"]) == (2, 13)
    assert report["agreement"] == pytest.approx(11 / 13)
    assert code == 1  # disagreements and a broken package


def test_each_mislabelled_submission_is_a_disagreement_with_its_verdict_and_time(audited):
    _, _, _, _, report = audited
    found = {(row["problem"], row["file"], row["label"], row["expected"], row["verdict"])
             for row in report["disagreements"]}
    assert found == {
        ("contest/sumtwo", "submissions/wrong_answer/actually_correct.py", "wrong_answer", "WA", "AC"),
        ("contest/divisor", "submissions/time_limit_exceeded/wrong_not_slow.py", "time_limit_exceeded", "TLE",
         "WA"),
    }
    assert all(0 < row["time_s"] < 2 for row in report["disagreements"])
    assert [row.get("detail", "").strip() for row in report["disagreements"] if row["verdict"] == "WA"] == ["gave up"]


def test_time_limits_are_the_packages_or_set_from_the_accepted_submissions(audited):
    _, _, _, _, report = audited
    # No fixed limit: the slowest accepted test (milliseconds) times 5 (legacy), rounded up to whole seconds.
    assert report["time_limits"] == {
        "contest/sumtwo": {"time_limit_s": 1.0, "source": "accepted submissions"},
        "contest/divisor": {"time_limit_s": 0.5, "source": ".timelimit"},
    }


def test_a_timeout_that_passes_with_the_safety_margin_agrees_with_extra_time(audited):
    _, _, _, _, report = audited
    (row,) = report["agreed_with_extra_time"]
    assert (row["file"], row["verdict"], row["with_extra_time"]) == ("submissions/accepted/slow_on_49.py", "TLE", "AC")
    assert row["time_s"] >= 0.5 and row["extra_time_limit_s"] == 1.0  # legacy time_safety_margin 2


def test_files_the_judge_does_not_run_and_unaudited_labels_are_listed(audited):
    _, _, _, stderr, report = audited
    skipped = {(row["problem"], row["file"]): row["reason"] for row in report["skipped"]}
    assert set(skipped) == {("contest/sumtwo", "submissions/accepted/Sum.java"),
                            ("contest/sumtwo", "submissions/brute_force")}
    assert "'.java'" in skipped[("contest/sumtwo", "submissions/accepted/Sum.java")]
    assert "not audited" in skipped[("contest/sumtwo", "submissions/brute_force")]
    assert "skipped contest/sumtwo/submissions/accepted/Sum.java" in stderr


def test_a_package_that_fails_to_load_is_named_and_the_others_still_run(audited):
    root, _, _, stderr, report = audited
    (error,) = report["errors"]
    assert error["package"] == str(root / "broken") and "1.ans" in error["error"]
    assert f"package {root / 'broken'} was not audited" in stderr and "no answer file 1.ans" in stderr


def test_table_on_stdout_and_the_report_file_renamed_into_place(audited):
    root, _, stdout, _, _ = audited
    lines = stdout.splitlines()
    assert lines[0].split()[:5] == ["label", "expect", "count", "agreed", "rate"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:] if line.strip()}
    assert rows["wrong_answer"] == ["WA", "3", "2", "66.7%", "AC", "1,", "WA", "2"]
    assert rows["all"] == ["13", "11", "84.6%"]
    assert ("disagrees: contest/sumtwo/submissions/wrong_answer/actually_correct.py: expected WA, got AC"
            in stdout)
    assert ("agrees only with extra time: contest/divisor/submissions/accepted/slow_on_49.py: TLE, then AC with 1 s"
            in stdout)
    assert [p.name for p in (root / "reports").iterdir()] == ["audit.json"]


def test_a_folder_without_packages_is_an_error_naming_it(tmp_path):
    (tmp_path / "notes").mkdir()
    code, stdout, stderr = run_main("audit", "--packages", str(tmp_path))
    assert code == 2 and stdout == ""
    assert f"--packages {tmp_path}: no problem package" in stderr
    code, _, stderr = run_main("audit", "--packages", str(tmp_path / "absent"))
    assert code == 2 and "absent: no such folder" in stderr
    code, _, stderr = run_main("audit", "--packages", str(tmp_path), "--out", str(tmp_path / "no" / "r.json"))
    assert code == 2 and "its folder does not exist" in stderr


def test_a_report_that_cannot_be_written_leaves_no_file(tmp_path):
    report = AuditReport(packages_dir=str(tmp_path))
    report.errors.append({"package": "p", "error": object()})  # not JSON: the write fails halfway
    with pytest.raises(TypeError):
        write_report(report, tmp_path / "audit.json")
    assert list(tmp_path.iterdir()) == []


def test_the_time_limit_scale_is_the_pools(tmp_path):
    slow = ("import time\na, b = map(int, input().split())\nstart = time.process_time()\n"
            "while a == 7 and time.process_time() - start < 0.7:\n    pass\nprint(a + b)\n")
    write_package(tmp_path / "sumtwo", SUM_TESTS, {"accepted/slow.py": slow}, "name: Sum\n", "0.5\n")
    code, stdout, _ = run_main("audit", "--packages", str(tmp_path), "--time-limit-scale", "2")
    # 0.7 s is within 0.5 s times 2 at once, without the safety margin's second run.
    assert code == 0 and "AC 1" in stdout and "extra time" not in stdout
    with pytest.raises(SystemExit):
        main(["audit", "--packages", str(tmp_path), "--time-limit-scale", "0"])


# judge/zygote.py does not yet hand compile_cpp the standard the runner chose (see test_cpp20_and_time_limits.py).
def test_the_cpp_standard_is_the_pools_or_the_language_names_it(tmp_path):
    write_package(tmp_path / "sumtwo", SUM_TESTS, {"accepted/contains.cpp": SUM_CPP20}, "name: Sum\n", "0.5\n")
    code, _, _ = run_main("audit", "--packages", str(tmp_path), "--cpp-std", "c++17",
                          "--out", str(tmp_path / "audit.json"))
    (row,) = json.loads((tmp_path / "audit.json").read_text())["disagreements"]
    assert (code, row["verdict"]) == (1, "CE") and "contains" in row["detail"]
    code, stdout, _ = run_main("run", "--problem", str(tmp_path / "sumtwo"), "--language", "c++17",
                               "--code", str(tmp_path / "sumtwo" / "submissions" / "accepted" / "contains.cpp"))
    assert code == 0 and json.loads(stdout)["verdict"] == "CE"
