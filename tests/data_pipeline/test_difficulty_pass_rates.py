"""Pass rates through an SGLang-style /generate endpoint and the real judge: a scripted policy on loopback
(aiohttp, in a thread) answers each problem with its reference solution, a wrong program, or prose, so the
measured rates are known; anchors spread over the predicted difficulty; a rerun reuses the checkpoint; and
the filter stage calibrates from such rates and selects by them."""
from __future__ import annotations

import pytest
from aiohttp import web
from transformers import AutoTokenizer

from judge.pool import JudgePool
from megatron_mc.data import tiny_tasks
from megatron_mc.data.pipeline.checkpoint import Checkpoint
from megatron_mc.data.pipeline.difficulty.pass_rates import (
    PassRateConfig, choose_anchors, measure_pass_rates, prompt_problem)
from megatron_mc.data.pipeline.filter import DifficultyConfig, FilterConfig, run_filter
from megatron_mc.data.pipeline.stage import Resources, StageContext
from megatron_mc.data.pipeline.record import ProblemRecord
from megatron_mc.data.tiny_default import prepare_tiny_default
from tests.support import LoopbackApp, no_progress

WRONG = "```python\nprint('no idea')\n```"


class ScriptedPolicy(LoopbackApp):
    """POST /generate: the answer depends on the problem's marker in the prompt and on the sample's seed:
    mode "all" answers its reference solution, "half" that or a wrong program by the seed's parity, "none"
    prose without a program."""

    def __init__(self, tokenizer, plan: dict[str, tuple[str, str]]):
        self.tokenizer = tokenizer
        self.plan = plan  # marker -> (mode, reference program)
        self.prompts: list[str] = []
        super().__init__()

    async def generate(self, request: web.Request) -> web.Response:
        body = await request.json()
        prompt = self.tokenizer.decode(body["input_ids"])
        self.prompts.append(prompt)
        seed = body["sampling_params"]["sampling_seed"]
        mode, program = next(self.plan[m] for m in self.plan if m in prompt)
        solution = f"Here it is:\n```python\n{program}\n```"
        text = {"all": solution, "half": solution if seed % 2 == 0 else WRONG,
                "none": "I would loop over the input."}[mode]
        return web.json_response({"text": text, "output_ids": [], "meta_info": {
            "id": body["rid"], "finish_reason": {"type": "stop"}, "prompt_tokens": len(body["input_ids"]),
            "completion_tokens": 0, "weight_version": "0"}})

    async def model_info(self, request: web.Request) -> web.Response:
        return web.json_response({"model_path": self.tokenizer.name_or_path,
                                  "tokenizer_path": self.tokenizer.name_or_path})

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/generate", self.generate)
        app.router.add_get("/get_model_info", self.model_info)


@pytest.fixture(scope="module")
def tiny():
    return prepare_tiny_default()


def test_pass_rates_count_judged_samples_and_resume_from_the_checkpoint(tiny, tmp_path):
    problems = tiny_tasks.make_problems("train")[:3]
    records = [ProblemRecord(p, source="tiny", statement=f"{marker} {p.metadata['question_content']}",
                             annotations={"format_instruction": "Answer in one ```python block."})
               for p, marker in zip(problems, ("[all]", "[half]", "[none]"))]
    plan = {m: (m.strip("[]"), p.metadata["reference_solution"])
            for p, m in zip(problems, ("[all]", "[half]", "[none]"))}
    cfg = PassRateConfig(samples=4, tokenizer_path=str(tiny.hf_dir), seed=0)
    with ScriptedPolicy(AutoTokenizer.from_pretrained(tiny.hf_dir), plan) as policy, \
            JudgePool(workers=1) as pool:
        checkpoint = Checkpoint(tmp_path / "pass_rates.checkpoint.jsonl")
        rows = measure_pass_rates(records, cfg, policy.url, pool, checkpoint, no_progress)
        ids = [r.id for r in records]
        assert [rows[i]["pass_rate"] for i in ids] == [1.0, 0.5, 0.0]
        assert rows[ids[0]]["verdicts"] == {"AC": 4}
        assert rows[ids[1]]["verdicts"] == {"AC": 2, "WA": 2} and rows[ids[1]]["solved"] == 2
        assert rows[ids[2]]["verdicts"] == {"no_code": 4}
        assert len(policy.prompts) == 12
        prompt = next(p for p in policy.prompts if "[half]" in p)
        assert prompt.startswith("<|im_start|>user\n") and prompt.endswith("<|im_start|>assistant\n")
        assert "Answer in one ```python block." in prompt, "the format instruction follows the statement"
        checkpoint.close()
        again = measure_pass_rates(records, cfg, policy.url, pool,
                                   Checkpoint(tmp_path / "pass_rates.checkpoint.jsonl"), no_progress)
        assert again == rows and len(policy.prompts) == 12, "a rerun samples nothing already measured"


def test_anchors_spread_over_the_predicted_difficulty():
    problems = tiny_tasks.make_problems("train")[:10]
    records = [ProblemRecord(p, source="tiny") for p in problems]
    weighted = {r.id: float(k) for k, r in enumerate(records)}
    anchors = choose_anchors(records, weighted, 4)
    assert [weighted[a.id] for a in anchors] == [0.0, 3.0, 6.0, 9.0]
    assert len(choose_anchors(records, weighted, 50)) == 10


def test_the_format_instruction_can_be_left_out_of_the_prompt():
    problem = tiny_tasks.make_problems("train")[0]
    rec = ProblemRecord(problem, source="tiny", statement="Add.", annotations={"format_instruction": "Use python."})
    assert prompt_problem(rec).metadata["question_content"] == "Add.\n\nUse python."
    assert prompt_problem(rec, format_instruction=False).metadata["question_content"] == "Add."


def test_filter_calibrates_from_measured_pass_rates_and_selects_by_them(tiny, tmp_path):
    problems = tiny_tasks.make_problems("train")[:9]
    modes = ["all", "half", "none"] * 3
    hardness = {"all": "", "half": " (1 <= n <= 10^5)", "none": " (1 <= n <= 10^18), modulo a prime"}
    records = [ProblemRecord(p, source="tiny", statement=f"[p{k}] {p.metadata['question_content']}{hardness[mode]}")
               for k, (p, mode) in enumerate(zip(problems, modes))]
    plan = {f"[p{k}]": (mode, p.metadata["reference_solution"]) for k, (p, mode) in enumerate(zip(problems, modes))}
    ids = {mode: {p.id for p, m in zip(problems, modes) if m == mode} for mode in hardness}
    difficulty = DifficultyConfig(predictor="heuristic", pass_rates=PassRateConfig(anchors=9, samples=4))
    with ScriptedPolicy(AutoTokenizer.from_pretrained(tiny.hf_dir), plan) as policy:
        ctx = StageContext(tmp_path, workers=1, quiet=True, resources=Resources(1, engine_url=policy.url))
        out = run_filter(records, FilterConfig(difficulty=difficulty), ctx)
        ctx.close_checkpoints()
        ctx.resources.close()
    calibration = out.report["difficulty"]["calibration"]
    assert calibration["status"] == "calibrated" and calibration["anchors_solved"] == 6
    assert calibration["spearman_after"] >= calibration["spearman_before"] > 0.8
    assert out.report["difficulty"]["pass_rate_map"] == "calibrated (logistic)"
    assert {r.id for r in out.rejected if r.reason == "never_solved"} == ids["none"]
    kept = {r.id: r.annotations for r in out.kept}
    assert ids["half"] <= set(kept) <= ids["half"] | ids["all"]
    for i in ids["half"]:
        assert kept[i]["measured_pass_rate"] == 0.5 and kept[i]["calibrated_pass_rate"] == kept[i]["predicted_pass_rate"]
    assert out.report["difficulty"]["select"]["unsolved_rule"] == "applied"
