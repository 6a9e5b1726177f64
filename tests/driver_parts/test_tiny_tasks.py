"""The embedded default's task family: schema, split by unseen (template, value) combination, deterministic tests."""
import json

from judge.problem import load_problems_jsonl
from megatron_mc.data import tiny_tasks


def test_split_holds_out_unseen_combinations_of_values_seen_elsewhere():
    train, held_out = tiny_tasks.make_problems("train"), tiny_tasks.make_problems("held_out")
    assert len(train) >= 100 and len(held_out) >= 24
    ids = [p.id for p in train + held_out]
    assert len(ids) == len(set(ids))
    train_statements = {p.metadata["question_content"] for p in train}
    seen = {(p.metadata["template"], p.metadata["param"]) for p in train}
    for problem in held_out:
        template, value = problem.metadata["template"], problem.metadata["param"]
        assert (template, value) not in seen
        assert problem.metadata["question_content"] not in train_statements
        assert template in {t for t, _ in seen}
        assert str(value) in problem.metadata["question_content"]
        assert str(value) in problem.metadata["reference_solution"]
        trained_with = {t for t, v in seen if v == value}
        assert len(trained_with) >= 4, (problem.id, trained_with)
        assert any(str(value) in p.metadata["reference_solution"] for p in train
                   if p.metadata["template"] in trained_with)


def test_every_problem_has_distinct_tests_and_the_io_note():
    for problem in tiny_tasks.make_problems("train") + tiny_tasks.make_problems("held_out"):
        inputs = [t.input for t in problem.tests]
        assert len(inputs) == tiny_tasks.TESTS_PER_PROBLEM == len(set(inputs)), problem.id
        assert all(t.output.endswith("\n") for t in problem.tests)
        assert problem.metadata["question_content"].endswith(tiny_tasks.IO_NOTE)


def test_generation_is_deterministic_and_written_as_normalized_jsonl(tmp_path):
    path = tiny_tasks.write_problems(tmp_path / "held_out.jsonl", "held_out")
    loaded = load_problems_jsonl(path)
    assert [p.to_dict() for p in loaded] == [p.to_dict() for p in tiny_tasks.make_problems("held_out")]
    assert json.loads(path.read_text().splitlines()[0])["metadata"]["split"] == "held_out"


def test_hand_checked_examples():
    problems = {p.id: p for p in tiny_tasks.make_problems("held_out")}
    divisible = problems["tiny/divisible/p9/v0"]
    for test in divisible.tests:
        assert test.output == ("YES\n" if int(test.input) % 9 == 0 else "NO\n")
    assert problems["tiny/add_const/p6/v1"].metadata["question_content"].startswith(
        "Given an integer, output that integer plus 6.")
    assert tiny_tasks.reference_response(problems["tiny/add_const/p6/v0"]) == \
        "```python\nn = int(input())\nprint(n + 6)\n```"
