"""The process stage's rules on fixtures: each rejection reason, normalization, duplicates (datasketch
MinHash LSH), decontamination by date and n-grams, the test cap, format instructions; and the bundled corpus."""
import dataclasses
import json

import pytest

from judge.loaders import load_problems
from judge.problem import Problem, ProblemError, TestCase
from megatron_mc.data.pipeline.collect import CollectConfig, SourceConfig, run_collect
from megatron_mc.data.pipeline.decontaminate import DecontaminationConfig, EvalSetConfig
from megatron_mc.data.pipeline.dedup import DedupConfig
from megatron_mc.data.pipeline.format_instructions import STDIO
from megatron_mc.data.pipeline.jsonl import write_records
from megatron_mc.data.pipeline.normalize import clean_statement, missing_sections
from megatron_mc.data.pipeline.process import ProcessConfig, run_process
from megatron_mc.data.pipeline.record import ProblemRecord
from megatron_mc.data.pipeline.stage import StageContext
from megatron_mc.data.pipeline.test_cap import TestCapConfig

LONG = ("A courier drives along a straight road with houses numbered from one to n and must deliver one parcel to "
        "every house whose number is divisible by the day of the week written on the parcel slip. On the way back "
        "she counts the houses that got a parcel and writes that count into her logbook before going home.")
IO = "\n\nInput\nThe first line holds n.\n\nOutput\nPrint the answer."


def rec(problem_id, statement, tests=None, kind="stdio", release_date="2023-01-01", public=None, starter=None):
    tests = tests or [TestCase(f"{problem_id}\n", "1\n")]
    metadata = {"public_tests": public} if public is not None else {}
    problem = Problem(problem_id, kind, tests, fn_name="solve" if kind == "function" else None, metadata=metadata)
    return ProblemRecord(problem, "test", statement=statement, release_date=release_date, starter_code=starter)


def process(tmp_path, records, **cfg):
    base = ProcessConfig(decontaminate=DecontaminationConfig(window_start=None, eval_sets=[]))
    return run_process(records, dataclasses.replace(base, **cfg), StageContext(tmp_path / "process", quiet=True))


def reasons(output):
    return {r.id: r.reason for r in output.rejected}


def test_html_and_latex_remnants_are_cleaned():
    html = "<p>Compute a&nbsp;+&nbsp;b.</p><p><b>Input</b></p><p>|a| &lt;= 10<sup>9</sup></p><script>x()</script>"
    assert clean_statement(html) == "Compute a + b.\n\nInput\n\n|a| <= 10^9"
    latex = (r"\section*{Output} Print $\left(\sum_{i=1}^{n} i^{2}\right) \bmod m$ for $1 \le n \le 10^{18}$, "
             r"\texttt{\textbf{YES}} if $a \neq b$.")
    assert clean_statement(latex) == "Output\nPrint (sum_i=1^n i^2) mod m for 1 <= n <= 10^18, YES if a != b."


def test_angle_brackets_that_are_not_html_stay():
    assert clean_statement("Print YES if a<b and b>c") == "Print YES if a<b and b>c"
    assert clean_statement("vector<int> f(vector<int>& a)") == "vector<int> f(vector<int>& a)"
    assert clean_statement("Count 1 <= i < p <= n such that a_i > a_p.") == \
        "Count 1 <= i < p <= n such that a_i > a_p."
    assert clean_statement("if x<i and i>0 then y") == "if x<i and i>0 then y"
    # real HTML around them is still cleaned
    markup = ('<div class="statement"><span style=\'color:red\'>a<b</span><br/><ul><li>one</li><li>two</li></ul>'
              '<img src="a.png" /><A HREF="u">link</A></div><h2>Output</h2>x<i>y</i><!-- note -->')
    assert clean_statement(markup) == "a<b\n\n- one\n\n- two\nlink\n\nOutput\nxy"


def test_sections_found_by_heading_or_stream_name():
    assert missing_sections("Sum.\n-----Input-----\nn\n-----Output-----\nx") == []
    assert missing_sections("Sum.\n## Input Format\nn\nOutput:\nx") == []
    assert missing_sections("Read from standard input and write to standard output.") == []
    assert missing_sections("Sum of the numbers.\nInput\nThe numbers.") == ["output"]
    assert missing_sections("Sum. The input is fine.\nOutput\nx") == ["input"]


def test_each_statement_rejection_reason(tmp_path):
    out = process(tmp_path, [
        rec("ok", LONG + IO),
        rec("no-output", LONG + "\n\nInput\nThe first line holds n."),
        rec("no-input", LONG + "\n\nOutput\nPrint the answer."),
        rec("empty", "  <p></p> "),
        rec("function-needs-no-sections", "Return how many parcels the courier delivers today.", kind="function"),
    ])
    assert reasons(out) == {"no-output": "missing_output_section", "no-input": "missing_input_section",
                            "empty": "empty_statement"}
    assert "standard output" in out.rejected[0].detail
    kept = process(tmp_path, [rec("no-output", LONG)], require_io_sections=False)
    assert [r.id for r in kept.kept] == ["no-output"]


def test_exact_and_near_duplicates_keep_the_first(tmp_path):
    reworded = LONG.replace("must deliver", "has to deliver")
    assert reworded != LONG
    out = process(tmp_path, [
        rec("first", LONG + IO, tests=[TestCase("1\n", "1\n")]),
        rec("same-with-markup", f"<p>{LONG}</p>" + IO, tests=[TestCase("1\n", "1\n")]),
        rec("reworded", reworded + IO),
        rec("other-operator", "Read a and b and print a + b." + IO),
        rec("other-operator-2", "Read a and b and print a * b." + IO),
        rec("different", "Count the islands in a grid of land and water cells, where cells touching by a side "
                         "belong to one island." + IO),
    ])
    assert reasons(out) == {"same-with-markup": "exact_duplicate", "reworded": "near_duplicate"}
    assert out.rejected[1].detail.startswith("repeats first (estimated Jaccard")
    looser = process(tmp_path, [rec("a", LONG + IO), rec("b", reworded + IO)], dedup=DedupConfig(threshold=0.95))
    assert reasons(looser) == {}


def test_decontamination_by_date_and_ngrams(tmp_path):
    eval_path = tmp_path / "eval.jsonl"
    eval_row = {"id": "eval/1", "kind": "stdio", "tests": [{"input": "1\n", "output": "1\n"}],
                "statement": "Long ago " + LONG + " Nothing else.", "release_date": "2025-02-01"}
    eval_path.write_text(json.dumps(eval_row) + "\n")
    cfg = DecontaminationConfig(window_start="2025-01-01", eval_sets=[EvalSetConfig(str(eval_path))])
    out = process(tmp_path, [
        rec("on-window-start", "Sort the numbers." + IO, release_date="2025-01-01"),
        rec("day-before", "Sort the numbers in reverse." + IO, release_date="2024-12-31"),
        rec("undated", "Sort the strings." + IO, release_date=None),
        rec("copied", "Story: " + LONG + IO, release_date="2020-05-05"),
        rec("twelve-words-shared", " ".join(LONG.split()[:12]) + " and then something else entirely." + IO),
    ], decontaminate=cfg)
    assert reasons(out) == {"on-window-start": "released_in_eval_window", "copied": "eval_ngram_overlap"}
    assert "'eval/1'" in out.rejected[1].detail
    assert out.report["evaluation_problems"] == 1 and out.report["without_release_date"] == 1


def test_dates_are_compared_as_dates(tmp_path):
    # "20250101" is a valid (basic) ISO date; compared as text, "2025-06-01" < "20250101" kept a 2025 problem
    cfg = DecontaminationConfig(window_start="20250101", eval_sets=[])
    out = process(tmp_path, [
        rec("june-2025", "Sort the numbers." + IO, release_date="2025-06-01"),
        rec("unpadded-2025", "Sort the numbers in reverse." + IO, release_date="2025-1-5"),
        rec("lcb-datetime", "Sort the strings." + IO, release_date="2024-12-31T23:00:00"),
        rec("lcb-datetime-in", "Sort the strings in reverse." + IO, release_date="2025-01-01T00:00:00"),
        rec("2024", "Count the words." + IO, release_date="2024-11-30"),
    ], decontaminate=cfg)
    assert reasons(out) == {"june-2025": "released_in_eval_window", "unpadded-2025": "released_in_eval_window",
                            "lcb-datetime-in": "released_in_eval_window"}
    with pytest.raises(ValueError, match="'March 2019'"):
        DecontaminationConfig(window_start="March 2019")


def test_a_release_date_that_does_not_parse_names_file_row_and_key(tmp_path):
    def row(release_date):
        return {"id": "p", "kind": "stdio", "tests": [{"input": "1\n", "output": "1\n"}], "statement": "x",
                "release_date": release_date}

    for bad in ("2025", "March 2019", "2025-13-01"):
        path = tmp_path / "mine.jsonl"
        path.write_text(json.dumps(row("2023-01-01")) + "\n" + json.dumps(row(bad)) + "\n")
        with pytest.raises(ProblemError) as info:
            run_collect(CollectConfig([SourceConfig("jsonl", str(path))]), StageContext(tmp_path / "c", quiet=True))
        assert f"{path}, row 2: 'release_date': expected a date" in str(info.value) and repr(bad) in str(info.value)
    path.write_text(json.dumps(row("2025-1-5")) + "\n" + json.dumps({**row(None), "id": "q"}) + "\n")
    out = run_collect(CollectConfig([SourceConfig("jsonl", str(path))]), StageContext(tmp_path / "c", quiet=True))
    assert [r.release_date for r in out.kept] == ["2025-01-05", None]


def test_lcb_rows_as_evaluation_set(tmp_path):
    from pathlib import Path
    lcb = Path(__file__).resolve().parents[1] / "judge" / "fixtures_formats" / "livecodebench.jsonl"
    cfg = DecontaminationConfig(window_start=None, eval_sets=[EvalSetConfig(str(lcb), "livecodebench")], ngram=5)
    out = process(tmp_path, [rec("gap", "Given an integer array nums, return the maximum difference please.",
                                 kind="function")], decontaminate=cfg)
    assert reasons(out) == {"gap": "eval_ngram_overlap"}


def test_test_cap_keeps_public_first_and_bounds_bytes(tmp_path):
    tests = [TestCase(f"{i}\n", "x" * size) for i, size in enumerate([10, 10, 5000, 10, 10, 10])]
    out = process(tmp_path, [rec("many", LONG + IO, tests=tests, public=2)],
                  test_cap=TestCapConfig(max_tests=4, max_total_bytes=1000))
    problem = out.kept[0].problem
    assert [t.input for t in problem.tests] == ["0\n", "1\n", "3\n", "4\n"]  # the 5000-byte test skipped
    assert problem.metadata["public_tests"] == 2 and problem.metadata["tests_before_cap"] == 6
    assert out.report["tests_capped"] == 1
    too_big = process(tmp_path, [rec("huge", LONG + IO, tests=[TestCase("1\n", "x" * 50)])],
                      test_cap=TestCapConfig(max_total_bytes=10))
    assert reasons(too_big) == {"huge": "tests_too_large"}


def test_format_instruction_per_kind_reaches_the_trainer(tmp_path):
    out = process(tmp_path, [rec("io", LONG + IO),
                             rec("fn", "Return the sum.", kind="function", starter="def solve(a):\n    ...\n")])
    io_record, fn_record = out.kept
    assert io_record.annotations["format_instruction"] == STDIO
    assert fn_record.annotations["format_instruction"].startswith("Write the Python function `solve`")
    assert "starter code" in fn_record.annotations["format_instruction"]
    path = tmp_path / "kept.jsonl"
    write_records(path, out.kept)
    problems = {p.id: p for p in load_problems(path)}
    assert problems["io"].metadata["question_content"].endswith(STDIO)  # what rollout's PromptBuilder reads
    assert problems["fn"].metadata["starter_code"] == "def solve(a):\n    ...\n"


def test_bundled_corpus_planted_process_defects(tmp_path):
    collected = run_collect(CollectConfig([SourceConfig("bundled")]), StageContext(tmp_path / "c", quiet=True))
    out = run_process(collected.kept, ProcessConfig(), StageContext(tmp_path / "p", quiet=True))
    assert reasons(out) == {
        "bundled/sum-of-evens-copy": "exact_duplicate",
        "bundled/vowel-count-reworded": "near_duplicate",
        "bundled/no-output-section": "missing_output_section",
        "bundled/digit-sum-2025": "released_in_eval_window",
        "bundled/staircase-copy": "eval_ngram_overlap",
    }
    add = next(r for r in out.kept if r.id == "bundled/add-two-numbers")
    assert "<p>" not in add.statement and "|a|, |b| <= 10^9" in add.statement
