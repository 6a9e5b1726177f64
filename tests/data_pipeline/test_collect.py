"""The collect stage's adapters on real files: the judge's format fixtures, Codeforces-style rows, Kattis
packages, HumanEval from its package (judged with the real judge), our own rows, the bundled corpus."""
import json
import shutil
from pathlib import Path

import pytest

from judge.pool import JudgePool
from judge.problem import ProblemError
from megatron_mc.data.pipeline.collect import CollectConfig, SourceConfig, run_collect
from megatron_mc.data.pipeline.collect_sources.own_schema import BUNDLED_PROBLEMS
from megatron_mc.data.pipeline.corpus.make_corpus import PLANTED
from megatron_mc.data.pipeline.stage import StageContext

FORMATS = Path(__file__).resolve().parents[1] / "judge" / "fixtures_formats"


def collect(tmp_path, *sources):
    return run_collect(CollectConfig(list(sources)), StageContext(tmp_path / "collect", quiet=True))


def by_id(output):
    return {r.id: r for r in output.kept}


def test_judge_formats_become_records_with_their_fields(tmp_path):
    out = collect(tmp_path, SourceConfig("livecodebench", str(FORMATS / "livecodebench.jsonl")),
                  SourceConfig("taco", str(FORMATS / "taco.jsonl")),
                  SourceConfig("codecontests", str(FORMATS / "codecontests.jsonl")),
                  SourceConfig("kattis", str(FORMATS / "kattis")))
    records = by_id(out)
    lcb = records["abc999_a"]
    assert (lcb.source, lcb.platform, lcb.difficulty, lcb.release_date) == ("livecodebench", "atcoder", "easy", "2024-08-03")
    assert lcb.statement.startswith("Sum of Two\n\nRead A and B")
    assert records["3801"].problem.kind == "function" and "class Solution" in records["3801"].starter_code
    taco = records["taco-1"]
    assert taco.annotations["tags"] == ["Mathematics"] and taco.reference_solutions[0]["language"] == "python"
    cc = records["1548_C. The Three Little Numbers"]
    assert cc.annotations == {"tags": ["math"], "rating": 1700}
    assert cc.problem.metadata["public_tests"] == 1 and cc.reference_solutions[0]["code"].startswith("a, b, c")
    assert records["hello"].platform == "kattis" and len(records["hello"].problem.tests) >= 2
    assert out.report["per_source"] == {"livecodebench": 3, "taco": 2, "codecontests": 2, "kattis": 3}


def test_kattis_interactive_package_is_a_rejection(tmp_path):
    packages = tmp_path / "packages"
    shutil.copytree(FORMATS / "kattis", packages)
    (packages / "hello" / "problem.yaml").write_text("name: Hello\nvalidation: custom interactive\n")
    out = collect(tmp_path, SourceConfig("kattis", str(packages)))
    assert [(r.id, r.reason) for r in out.rejected] == [("hello", "interactive")]
    assert sorted(by_id(out)) == ["anyorder", "yesno"]


def _cf_row(**fields):
    row = {"contest_id": 1843, "index": "A", "title": "Sum", "description": "Add numbers.",
           "input_format": "Two integers.", "output_format": "Their sum.", "rating": 800, "tags": ["math"],
           "examples": [{"input": "1 2\n", "output": "3\n"}],
           "official_tests": [{"input": "1 2\n", "output": "3\n"}, {"input": "5 5\n", "output": "10\n"}],
           "contest_start": 1700000000, "time_limit": 1, "memory_limit": 256}
    return {**row, **fields}


def test_codeforces_rows(tmp_path):
    path = tmp_path / "cf.jsonl"
    rows = [_cf_row(), _cf_row(index="B", interaction_format="Ask queries.")]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = collect(tmp_path, SourceConfig("codeforces", str(path)))
    record = by_id(out)["1843A"]
    assert record.difficulty == "800" and record.annotations == {"tags": ["math"], "rating": 800}
    assert [t.input for t in record.problem.tests] == ["1 2\n", "5 5\n"]  # the example first, not twice
    assert record.problem.metadata["public_tests"] == 1 and record.release_date == "2023-11-14"
    assert "Input\nTwo integers." in record.statement and "Output\nTheir sum." in record.statement
    assert [(r.id, r.reason) for r in out.rejected] == [("1843B", "interactive")]


def test_codeforces_bad_row_names_file_row_and_key(tmp_path):
    path = tmp_path / "cf.jsonl"
    path.write_text(json.dumps(_cf_row()) + "\n" + json.dumps(_cf_row(index="C", rating="hard")) + "\n")
    with pytest.raises(ProblemError, match=rf"{path}, row 2: key 'rating'"):
        collect(tmp_path, SourceConfig("codeforces", str(path)))


def test_codeforces_limits_as_text(tmp_path):
    path = tmp_path / "cf.jsonl"
    rows = [_cf_row(time_limit="2 seconds", memory_limit="256 megabytes"), _cf_row(index="B", time_limit="1.5s")]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    records = by_id(collect(tmp_path, SourceConfig("codeforces", str(path))))
    assert (records["1843A"].problem.time_limit_s, records["1843A"].problem.memory_limit_mb) == (2.0, 256)
    assert records["1843B"].problem.time_limit_s == 1.5
    path.write_text(json.dumps(_cf_row(time_limit="two seconds")) + "\n")
    with pytest.raises(ProblemError, match=rf"{path}, row 1: key 'time_limit': expected a number .*'two seconds'"):
        collect(tmp_path, SourceConfig("codeforces", str(path)))


def test_humaneval_from_its_package_judged_for_real(tmp_path):
    out = collect(tmp_path, SourceConfig("humaneval"))
    assert len(out.kept) == 163
    assert [(r.id, r.reason) for r in out.rejected] == [("HumanEval/32", "property_checked")]
    first = by_id(out)["HumanEval/0"]
    assert first.problem.kind == "function" and first.problem.fn_name == "has_close_elements"
    assert first.problem.tests[0].input == "[1.0, 2.0, 3.9, 4.0, 5.0, 2.2]\n0.3"
    assert first.problem.tests[0].output == "true" and len(first.problem.tests) == 7
    assert "def has_close_elements" in first.starter_code and "closer to each other" in first.statement
    chosen = [by_id(out)[i] for i in ("HumanEval/0", "HumanEval/38", "HumanEval/95")]
    with JudgePool(workers=2) as pool:
        for record in chosen:
            assert pool.judge(record.problem, record.reference_solutions[0]["code"], all_tests=True).passed == \
                len(record.problem.tests), record.id
        wrong = first.starter_code + "    return False\n"
        assert pool.judge(first.problem, wrong).verdict.name == "WA"


def test_own_schema_rows_and_ids_repeated_across_sources(tmp_path):
    out = collect(tmp_path, SourceConfig("jsonl", str(FORMATS / "normalized.jsonl")),
                  SourceConfig("jsonl", str(FORMATS / "normalized.jsonl"), name="again"))
    assert sorted(by_id(out)) == ["add", "again/add", "again/echo", "echo"]
    assert by_id(out)["again/echo"].source == "again"


def test_bundled_corpus_has_its_planted_defects(tmp_path):
    out = collect(tmp_path, SourceConfig("bundled"), SourceConfig("tiny_tasks", limit=5))
    records = by_id(out)
    assert set(PLANTED) <= set(records)
    assert len([r for r in records.values() if r.source == "bundled"]) == sum(1 for _ in BUNDLED_PROBLEMS.open())
    assert all(r.reference_solutions for r in records.values())
    assert records["tiny/sum_two/p0/v0"].statement.startswith("Read two integers")


def test_bundled_references_pass_their_tests_except_the_planted_wrong_one(tmp_path):
    records = [r for r in collect(tmp_path, SourceConfig("bundled")).kept if r.id != "bundled/guess-number"]
    with JudgePool(workers=2) as pool:
        results = pool.judge_many([(r.problem, r.reference_solutions[0]["code"], "python") for r in records],
                                  all_tests=True)
    failing = {r.id: [i for i, t in enumerate(res.tests) if t.verdict.name != "AC"]
               for r, res in zip(records, results) if res.passed < len(r.problem.tests)}
    assert failing == {"bundled/max-subarray": [3]}


def test_bundled_incorrect_solutions_fail_except_the_planted_weak_tests(tmp_path):
    records = [r for r in collect(tmp_path, SourceConfig("bundled")).kept if r.incorrect_solutions]
    with JudgePool(workers=2) as pool:
        results = pool.judge_many([(r.problem, r.incorrect_solutions[0]["code"], "python") for r in records])
    passing = sorted({r.id for r, res in zip(records, results) if res.verdict.name == "AC"})
    assert passing == ["bundled/absolute-difference"]
    assert len(records) >= 6


def test_an_id_repeated_by_three_sources_gets_three_names(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps({"id": "a", "kind": "stdio", "tests": [{"input": "1\n", "output": "1\n"}],
                                "statement": "x"}) + "\n")
    out = collect(tmp_path, *(SourceConfig("jsonl", str(path)) for _ in range(3)))
    assert [r.id for r in out.kept] == ["a", "jsonl/a", "jsonl/a#2"]
