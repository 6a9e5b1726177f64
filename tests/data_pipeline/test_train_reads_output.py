"""mc-train reads mc-data's train.jsonl directly: `data.source: file` with `data.train_problems` pointing at it
loads every problem as the judge runs it, and the rollout prompt shows the statement, the format
instruction and the starter code."""
from __future__ import annotations

import pytest
import yaml

from judge.loaders import load_problems
from judge.problem import Problem, TestCase
from megatron_mc.config import load_config
from megatron_mc.data.pipeline.jsonl import write_records
from megatron_mc.data.pipeline.record import ProblemRecord
from megatron_mc.data.sources import load_run_data
from megatron_mc.data.tiny_tokenizer import hf_tokenizer_from_sentencepiece, train_sentencepiece
from rollout.prompts import PromptBuilder

STDIO_STATEMENT = "Given two integers a and b, print their sum.\n\nInput\nOne line: a b.\n\nOutput\nOne integer."
STDIO_INSTRUCTION = "Write a complete Python program that reads standard input."
FUNCTION_STATEMENT = "Return the larger of x and y."
STARTER = "def larger(x, y):\n    pass\n"


def pipeline_records() -> list[ProblemRecord]:
    stdio = Problem(id="bundled/sum", kind="stdio", tests=[TestCase("1 2\n", "3\n"), TestCase("5 5\n", "10\n")],
                    time_limit_s=2.0, memory_limit_mb=256)
    function = Problem(id="humaneval/larger", kind="function", fn_name="larger",
                       tests=[TestCase("1\n2", "2"), TestCase("7\n3", "7")])
    return [
        ProblemRecord(problem=stdio, source="bundled", statement=STDIO_STATEMENT, release_date="2024-01-05",
                      platform="atcoder", difficulty="easy",
                      reference_solutions=[{"language": "python", "code": "print(sum(map(int, input().split())))"}],
                      annotations={"format_instruction": STDIO_INSTRUCTION, "weighted_score": 3.2,
                                   "verify": {"tests_before": 3, "tests_after": 2, "bad_tests": [1]}}),
        ProblemRecord(problem=function, source="humaneval", statement=FUNCTION_STATEMENT, starter_code=STARTER,
                      annotations={"format_instruction": "Write the Python function `larger`."}),
    ]


@pytest.fixture
def train_jsonl(tmp_path):
    path = tmp_path / "out" / "train.jsonl"
    write_records(path, pipeline_records())
    return path


def run_config(tmp_path, train_jsonl):
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump({"data": {"source": "file", "train_problems": str(train_jsonl)},
                                      "model": {"hf_dir": str(tmp_path / "model")}}))
    return load_config(config)


def test_judge_loader_reads_train_jsonl(train_jsonl):
    problems = load_problems(train_jsonl)
    expected = [r.problem for r in pipeline_records()]
    assert [(p.id, p.kind, p.fn_name, p.tests, p.time_limit_s) for p in problems] == \
        [(p.id, p.kind, p.fn_name, p.tests, p.time_limit_s) for p in expected]
    assert problems[0].metadata["source"] == "bundled" and problems[0].metadata["platform"] == "atcoder"
    assert problems[0].metadata["annotations"]["verify"]["bad_tests"] == [1]


def test_mc_train_file_source_loads_train_jsonl_with_prompts(tmp_path, train_jsonl):
    cfg = run_config(tmp_path, train_jsonl)
    assert (cfg.data.source, cfg.data.train_problems) == ("file", str(train_jsonl))
    data = load_run_data(cfg)
    assert [p.id for p in data.train] == ["bundled/sum", "humaneval/larger"]
    assert data.hf_dir == tmp_path / "model" and data.eval == []

    tokenizer = hf_tokenizer_from_sentencepiece(train_sentencepiece([STDIO_STATEMENT, FUNCTION_STATEMENT, STARTER], 400))
    prompts = PromptBuilder(tokenizer, instruction="Solve:")
    stdio_prompt = prompts.messages(data.train[0])[-1]["content"]
    assert STDIO_STATEMENT in stdio_prompt and stdio_prompt.index(STDIO_STATEMENT) < stdio_prompt.index(STDIO_INSTRUCTION)
    function_prompt = prompts.messages(data.train[1])[-1]["content"]
    assert FUNCTION_STATEMENT in function_prompt and "`larger`" in function_prompt and STARTER in function_prompt
    assert tokenizer.decode(prompts.prompt_ids(data.train[0])).count(STDIO_INSTRUCTION) == 1


def test_statement_already_in_question_content_is_left_alone(tmp_path):
    path = tmp_path / "train.jsonl"
    record = pipeline_records()[0]
    record.problem.metadata["question_content"] = "The loader's own statement."
    write_records(path, [record])
    data = load_run_data(run_config(tmp_path, path))
    assert data.train[0].metadata["question_content"] == "The loader's own statement."


def test_missing_train_file_is_named(tmp_path):
    with pytest.raises(Exception, match="no_such.jsonl"):
        load_run_data(run_config(tmp_path, tmp_path / "no_such.jsonl"))
