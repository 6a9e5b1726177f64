"""The process stage, per problem in collection order:
  1. statement normalization (normalize.py); an empty statement, or a stdin/stdout statement that does not
     say what its input or output is, is rejected (missing_input_section / missing_output_section);
  2. decontamination (decontaminate.py): released_in_eval_window, eval_ngram_overlap;
  3. duplicates (dedup.py): exact_duplicate, near_duplicate (the first one collected is kept);
  4. the test cap (test_cap.py): tests_too_large when no test fits;
  5. the format instruction per kind (format_instructions.py), stored in annotations["format_instruction"]
     and, with the statement, in metadata["question_content"]: the prompt text the trainer reads.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from megatron_mc.data.pipeline.decontaminate import DecontaminationConfig, Decontaminator
from megatron_mc.data.pipeline.dedup import DedupConfig, Deduplicator
from megatron_mc.data.pipeline.format_instructions import format_instruction
from megatron_mc.data.pipeline.normalize import clean_statement, missing_sections
from megatron_mc.data.pipeline.record import ProblemRecord, Rejection, StageOutput
from megatron_mc.data.pipeline.test_cap import TestCapConfig, cap_tests


@dataclass
class ProcessConfig:
    require_io_sections: bool = True    # stdin/stdout statements must say what the input and output are
    dedup: DedupConfig = field(default_factory=DedupConfig)
    decontaminate: DecontaminationConfig = field(default_factory=DecontaminationConfig)
    test_cap: TestCapConfig = field(default_factory=TestCapConfig)


def run_process(records: list[ProblemRecord], cfg: ProcessConfig, ctx) -> StageOutput:
    decontaminator = Decontaminator(cfg.decontaminate)
    deduplicator = Deduplicator(cfg.dedup)
    kept: list[ProblemRecord] = []
    rejected: list[Rejection] = []
    capped = 0
    for record in ctx.progress(records, total=len(records), desc="process"):
        outcome = _process_one(record, cfg, decontaminator, deduplicator)
        if isinstance(outcome, Rejection):
            rejected.append(outcome)
            continue
        capped += len(outcome.problem.tests) < len(record.problem.tests)
        kept.append(outcome)
    report = {"evaluation_problems": decontaminator.eval_problems, "tests_capped": capped,
              "without_release_date": sum(r.release_date is None for r in kept)}
    return StageOutput(kept, rejected, report)


def _process_one(record: ProblemRecord, cfg: ProcessConfig, decontaminator: Decontaminator,
                 deduplicator: Deduplicator) -> ProblemRecord | Rejection:
    def reject(reason: str, detail: str = "") -> Rejection:
        return Rejection(record.id, "process", reason, detail)

    statement = clean_statement(record.statement)
    if not statement:
        return reject("empty_statement", "the problem has no statement text")
    if cfg.require_io_sections and record.problem.kind == "stdio":
        for which in missing_sections(statement):
            return reject(f"missing_{which}_section",
                          f"the statement never says what the {which} is (no '{which.title()}' heading and no "
                          f"mention of standard {which})")
    contamination = decontaminator.check(statement, record.release_date)
    if contamination:
        return reject(*contamination)
    tests_key = json.dumps([[t.input, t.output] for t in record.problem.tests])
    duplicate = deduplicator.check(record.id, statement, tests_key)
    if duplicate:
        reason, of = duplicate
        return reject(reason, f"repeats {of}")
    problem = cap_tests(record.problem, cfg.test_cap)
    if problem is None:
        return reject("tests_too_large", f"every test is larger than {cfg.test_cap.max_total_bytes} bytes")
    instruction = format_instruction(problem, record.starter_code)
    problem = dataclasses.replace(problem, metadata={**problem.metadata,
                                                     "question_content": f"{statement}\n\n{instruction}"})
    return dataclasses.replace(record, problem=problem, statement=statement,
                               annotations={**record.annotations, "format_instruction": instruction})
