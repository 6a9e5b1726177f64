"""ProblemRecord rows, the pipeline's JSONL files and checkpoints: round trips, the judge reading our rows,
errors naming file and row, atomic writes, a checkpoint cut short by a kill."""
import json
import os

import pytest

from judge.loaders import load_problems
from judge.problem import Problem, ProblemError, TestCase
from megatron_mc.data.pipeline.checkpoint import Checkpoint
from megatron_mc.data.pipeline.jsonl import read_records, write_records, write_rows
from megatron_mc.data.pipeline.record import ProblemRecord, Rejection


def _record(problem_id="p1", **fields) -> ProblemRecord:
    problem = Problem(problem_id, "stdio", [TestCase("1 2\n", "3\n")], time_limit_s=2.0,
                      metadata={"question_content": "Add.", "public_tests": 1})
    return ProblemRecord(problem, source="bundled", statement="Add two numbers.", release_date="2023-01-02",
                         platform="codeforces", difficulty="800", starter_code=None,
                         reference_solutions=[{"language": "python", "code": "print(sum(map(int, input().split())))"}],
                         annotations={"tags": ["math"]}, **fields)


def test_row_round_trip_keeps_every_field(tmp_path):
    record = _record()
    row = record.to_row()
    assert row["source"] == "bundled" and row["release_date"] == "2023-01-02" and row["annotations"] == {"tags": ["math"]}
    assert "source" not in row["metadata"]  # pipeline fields live at the top level only
    assert ProblemRecord.from_row(json.loads(json.dumps(row)), "x:1") == record


def test_judge_loader_reads_our_rows(tmp_path):
    path = tmp_path / "train.jsonl"
    write_records(path, [_record("a"), _record("b")])
    problems = load_problems(path)
    assert [p.id for p in problems] == ["a", "b"]
    assert problems[0].metadata["statement"] == "Add two numbers."
    assert problems[0].metadata["question_content"] == "Add."
    assert read_records(path)[1] == _record("b")


def test_malformed_row_names_file_and_row(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps(_record().to_row()) + "\n\n{not json\n")
    with pytest.raises(ProblemError, match=rf"{path}, row 3: not valid JSON"):
        read_records(path)
    path.write_text(json.dumps(_record().to_row()) + "\n" + json.dumps({**_record().to_row(), "tests": []}) + "\n")
    with pytest.raises(ProblemError, match=rf"{path}, row 2: .*no tests"):
        read_records(path)
    bad_solutions = {**_record().to_row(), "reference_solutions": [{"language": "python"}]}
    path.write_text(json.dumps(bad_solutions) + "\n")
    with pytest.raises(ProblemError, match=rf"{path}, row 1: reference_solutions\[0\]"):
        read_records(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ProblemError, match="nope.jsonl: no such JSONL file"):
        read_records(tmp_path / "nope.jsonl")


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "kept.jsonl"
    write_records(path, [_record("old")])

    def rows():
        yield _record("new").to_row()
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_rows(path, rows())
    assert [r.id for r in read_records(path)] == ["old"]
    assert os.listdir(tmp_path) == ["kept.jsonl"]


def test_rejection_row():
    assert Rejection("p", "process", "near_duplicate", "of q").to_row() == {
        "id": "p", "stage": "process", "reason": "near_duplicate", "detail": "of q"}


def test_checkpoint_survives_a_line_cut_short(tmp_path):
    path = tmp_path / "work.checkpoint.jsonl"
    store = Checkpoint(path)
    store.append("a", {"score": 1})
    store.append("b", {"score": 2})
    store.close()
    with path.open("a") as f:
        f.write('{"id": "c", "row": {"sco')  # what a kill in the middle of a write leaves
    reopened = Checkpoint(path)
    assert reopened.done == {"a": {"score": 1}, "b": {"score": 2}}
    reopened.append("c", {"score": 3})
    reopened.close()
    assert Checkpoint(path).done["c"] == {"score": 3}


def test_a_limit_that_is_not_a_number_names_its_key(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({**_record().to_row(), "time_limit_s": "2 seconds"}) + "\n")
    with pytest.raises(ProblemError, match=rf"{path}, row 1: 'time_limit_s' must be a number, got '2 seconds'"):
        read_records(path)


def test_written_files_get_the_umask_mode_not_0600(tmp_path):
    from megatron_mc.data.pipeline.manifest import Manifest

    old = os.umask(0o022)
    try:
        write_records(tmp_path / "kept.jsonl", [_record()])
        Manifest(tmp_path / "manifest.json").set("x", 1)
    finally:
        os.umask(old)
    for name in ("kept.jsonl", "manifest.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name
