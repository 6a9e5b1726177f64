"""The long-answer tiny task family: well-formed problems whose every taught answer passes the real judge,
answers that fill the intended share of tiny_long_answers.yaml's budget, and the default family untouched."""
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from judge.extract import extract_code
from judge.pool import JudgePool
from megatron_mc.config import load_config
from megatron_mc.data import tiny_long_tasks, tiny_tasks
from megatron_mc.data.tiny_default import TinyModelShape, _cache_key, prepare_tiny_default

EXAMPLE_CONFIGS = Path(__file__).resolve().parents[2] / "examples" / "configs"

# The default family's cache key as built before the long family existed: the default run must keep
# reusing the same tasks, tokenizer, model and warm start. Change it only with a deliberate change to them.
DEFAULT_FAMILY_KEY = "82438d4a47c0027f"


def _all_problems(tasks):
    return tasks.make_problems("train") + tasks.make_problems("held_out")


@pytest.fixture(scope="module")
def long_tokenizer(tmp_path_factory):
    tiny = prepare_tiny_default(tmp_path_factory.mktemp("mc_cache") / "tiny_default", family="long")
    return AutoTokenizer.from_pretrained(tiny.hf_dir)


def test_default_family_cache_key_is_unchanged_and_the_long_family_has_its_own():
    assert _cache_key(1024, TinyModelShape(), tiny_tasks) == DEFAULT_FAMILY_KEY
    assert _cache_key(1024, TinyModelShape(), tiny_long_tasks) != DEFAULT_FAMILY_KEY
    assert all(tiny_tasks.sft_responses(p) == [tiny_tasks.reference_response(p)]
               for p in tiny_tasks.make_problems("train"))


def test_split_holds_out_unseen_orderings_and_problems_are_well_formed():
    train, held_out = tiny_long_tasks.make_problems("train"), tiny_long_tasks.make_problems("held_out")
    assert len(train) >= 200 and len(held_out) >= 24
    assert len({p.id for p in train + held_out}) == len(train) + len(held_out)
    assert not {p.metadata["template"] for p in held_out} & {p.metadata["template"] for p in train}
    assert not {p.metadata["question_content"] for p in held_out} & {p.metadata["question_content"] for p in train}
    for problem in train + held_out:
        inputs = [t.input for t in problem.tests]
        assert len(set(inputs)) == tiny_tasks.TESTS_PER_PROBLEM, problem.id
        assert all(len(t.output.splitlines()) == 3 for t in problem.tests), problem.id
        solutions = problem.metadata["reference_solutions"]
        assert solutions[0] == problem.metadata["reference_solution"]
        assert len(solutions[0]) < len(solutions[1]) < len(solutions[2])
    sum_max_min = next(p for p in train if p.id == "tiny_long/sum-max-min/v0")
    assert sum_max_min.metadata["question_content"].startswith(
        "The first line holds n, the second n integers. Print the sum, then the max, then the min, each on")
    for test in sum_max_min.tests:
        values = [int(x) for x in test.input.splitlines()[1].split()]
        assert test.output == f"{sum(values)}\n{max(values)}\n{min(values)}\n"


def test_every_taught_answer_is_accepted_by_the_judge_and_a_wrong_one_is_not():
    # phrasings share the code: judge phrasing v0 of every fifth ordering (all three answers each)
    problems = [p for k, p in enumerate(_all_problems(tiny_long_tasks)) if k % 10 == 0]
    submissions = [(p, *extract_code(r, "python")) for p in problems for r in tiny_long_tasks.sft_responses(p)]
    with JudgePool(workers=2) as pool:
        results = pool.judge_many(submissions, all_tests=True)
        failed = [(p.id, r.to_dict()) for (p, *_), r in zip(submissions, results) if not r.accepted]
        assert not failed
        swapped = [(p, p.metadata["reference_solution"].replace("print(", "print(-", 1), "python") for p in problems]
        assert not any(r.accepted for r in pool.judge_many(swapped))


def test_answers_fill_the_budget_the_long_config_gives_them(long_tokenizer):
    budget = load_config(EXAMPLE_CONFIGS / "tiny_long_answers.yaml").rollout.max_new_tokens
    lengths = {0: [], 1: [], 2: []}  # answer variant -> token counts with the end token
    for problem in _all_problems(tiny_long_tasks):
        for variant, response in enumerate(tiny_long_tasks.sft_responses(problem)):
            ids = long_tokenizer.encode(response, add_special_tokens=False)
            assert long_tokenizer.decode(ids) == response and long_tokenizer.unk_token_id not in ids
            lengths[variant].append(len(ids) + 1)
    # compact and plain answers fit and need most of the budget; the verbose one is always cut off
    assert 0.7 * budget <= min(lengths[0]) and max(lengths[1]) <= budget
    assert min(lengths[2]) > budget
