"""mc-data end to end through its command line, as real subprocesses: stages and manifest, skipping a
finished stage, resuming a stage killed with SIGKILL in the middle, bad input and bad config keys; and
(slow) `mc-data run` with no arguments: the embedded default with the embedded engine."""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from judge.loaders import load_problems
from megatron_mc.data.pipeline.manifest import file_hash

WORDS = ("apple river stone cloud maple tiger copper violin garden pencil rocket harbor lantern meadow "
         "silver canyon falcon marble orchid pepper quartz saddle tulip velvet walnut yacht zebra anchor "
         "bamboo cactus dolphin ember feather glacier hazel island jasmine kettle lemon mango nectar").split()


def mc_data(*args, cwd, timeout=240):
    return subprocess.run([sys.executable, "-m", "megatron_mc.data.pipeline.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def problems_file(path: Path, count: int, seconds_per_test: float = 0.0) -> Path:
    """`count` doubling problems with distinct statements (random words), four tests each."""
    rng = random.Random(7)
    rows = []
    for k in range(count):
        story = " ".join(rng.sample(WORDS, 25))
        code = f"import time\ntime.sleep({seconds_per_test})\nprint(int(input()) * 2)" if seconds_per_test else \
            "print(int(input()) * 2)"
        rows.append({"id": f"double-{k}", "kind": "stdio", "time_limit_s": 5.0,
                     "tests": [{"input": f"{i}\n", "output": f"{2 * i}\n"} for i in range(4)],
                     "source": "mine", "release_date": "2023-05-01",
                     "statement": f"{story}.\n\nInput\nOne integer n.\n\nOutput\nPrint 2 n.",
                     "reference_solutions": [{"language": "python", "code": code}]})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def write_config(path: Path, source: Path, out: Path, **extra) -> Path:
    config = {"out_dir": str(out), "workers": 1, "engine": {"embedded": False},
              "collect": {"sources": [{"kind": "jsonl", "path": str(source)}, {"kind": "bundled"}]},
              "filter": {"difficulty": {"enabled": False}}, **extra}
    path.write_text(yaml.safe_dump(config))
    return path


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def test_stages_write_manifest_and_skip_when_done(tmp_path):
    out = tmp_path / "run"
    config = write_config(tmp_path / "data.yaml", problems_file(tmp_path / "mine.jsonl", 3), out)
    for stage in ("collect", "process"):
        done = mc_data(stage, "--config", str(config), "--quiet", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    stages = manifest(out)["stages"]
    assert stages["collect"]["status"] == "done" and stages["collect"]["out"] == 3 + 36
    process = stages["process"]
    assert (process["in"], process["out"], process["rejected"]) == (39, 34, 5)
    assert process["rejections_by_reason"]["exact_duplicate"] == 1
    assert {"id": "bundled/no-output-section", "stage": "process", "reason": "missing_output_section"}.items() \
        <= next(r for r in process["rejections"] if r["id"] == "bundled/no-output-section").items()
    assert len(process["config_hash"]) == 16 and process["seconds"] >= 0
    assert yaml.safe_load((out / "config.yaml").read_text())["workers"] == 1
    kept_hash = file_hash(out / "process" / "kept.jsonl")

    again = mc_data("process", "--config", str(config), cwd=tmp_path)
    assert "process: done before with the same config and input; skipped" in again.stderr
    changed = mc_data("process", "--config", str(config), "--set", "process.test_cap.max_tests=2", "--quiet",
                      cwd=tmp_path)
    assert changed.returncode == 0, changed.stderr
    assert manifest(out)["stages"]["process"]["config_hash"] != process["config_hash"]
    assert file_hash(out / "process" / "kept.jsonl") != kept_hash
    assert all(len(p.tests) <= 2 for p in load_problems(out / "process" / "kept.jsonl"))


def test_bad_row_names_file_and_row_and_loses_nothing(tmp_path):
    out = tmp_path / "run"
    source = problems_file(tmp_path / "mine.jsonl", 2)
    config = write_config(tmp_path / "data.yaml", source, out)
    assert mc_data("collect", "--config", str(config), "--quiet", cwd=tmp_path).returncode == 0
    before = (out / "collect" / "kept.jsonl").read_bytes(), manifest(out)["stages"]["collect"]
    good_rows = source.read_text()
    with source.open("a") as f:
        f.write('{"id": "broken", "kind": "stdio", "tests": [{"input": "1\\n"}]}\n')
    failed = mc_data("collect", "--config", str(config), "--quiet", cwd=tmp_path)
    assert failed.returncode == 2
    assert f"{source}, row 3: test 0 must be an object with 'input' and 'output'" in failed.stderr
    assert (out / "collect" / "kept.jsonl").read_bytes() == before[0]
    assert {k: v for k, v in manifest(out)["stages"]["collect"].items() if k != "running"} == before[1]
    source.write_text(good_rows + "\n{oops\n")
    assert f"{source}, row 4: not valid JSON" in mc_data("collect", "--config", str(config), cwd=tmp_path).stderr


def test_bad_config_keys_are_named(tmp_path):
    config = tmp_path / "data.yaml"
    config.write_text("process:\n  dedupe: {threshold: 0.9}\n")
    failed = mc_data("collect", "--config", str(config), cwd=tmp_path)
    assert failed.returncode == 2
    assert f"{config}: unknown key 'process.dedupe'; did you mean 'dedup'?" in failed.stderr
    failed = mc_data("run", "--set", "collect.sources=[{kind: taco}]", cwd=tmp_path)
    assert "collect.sources[0]: source kind 'taco' needs a path" in failed.stderr
    failed = mc_data("run", "--config", str(tmp_path / "missing.yaml"), cwd=tmp_path)
    assert "missing.yaml: no such config file" in failed.stderr
    failed = mc_data("verify", "--out", str(tmp_path / "empty"), cwd=tmp_path)
    assert failed.returncode == 2 and "no input for stage 'verify'" in failed.stderr


def test_run_resumes_a_stage_killed_in_the_middle(tmp_path):
    out = tmp_path / "run"
    source = problems_file(tmp_path / "mine.jsonl", 6, seconds_per_test=0.25)
    config = write_config(tmp_path / "data.yaml", source, out,
                          collect={"sources": [{"kind": "jsonl", "path": str(source)}]})
    command = [sys.executable, "-m", "megatron_mc.data.pipeline.cli", "run", "--config", str(config), "--quiet"]
    first = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             start_new_session=True)
    checkpoint = out / "verify" / "verify.checkpoint.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and first.poll() is None:
        if checkpoint.exists() and checkpoint.read_text().count("\n") >= 2:
            break
        time.sleep(0.05)
    assert first.poll() is None, f"the run ended before it could be killed: {first.stderr.read()}"
    os.killpg(first.pid, signal.SIGKILL)   # mc-data and its judge workers, in the middle of verify
    first.wait()
    done_before = checkpoint.read_text().count("\n")
    assert 2 <= done_before < 6
    assert manifest(out)["stages"]["verify"].get("status") != "done"
    collect_mtime = (out / "collect" / "kept.jsonl").stat().st_mtime_ns

    second = mc_data("run", "--config", str(config), cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "collect: done before with the same config and input; skipped" in second.stderr
    assert "verify: resuming" in second.stderr
    verify = manifest(out)["stages"]["verify"]
    assert verify["status"] == "done" and verify["out"] == 6
    assert verify["resumed_from_checkpoints"]["verify"] == done_before
    assert len(checkpoint.read_text().splitlines()) == 6     # the finished problems were not judged again
    assert (out / "collect" / "kept.jsonl").stat().st_mtime_ns == collect_mtime
    assert sorted(p.id for p in load_problems(out / "train.jsonl")) == [f"double-{k}" for k in range(6)]


@pytest.mark.slow
def test_run_with_no_arguments_runs_the_embedded_default(tmp_path):
    done = mc_data("run", cwd=tmp_path, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "runs" / "data"
    data = manifest(out)
    assert [data["stages"][s]["status"] for s in ("collect", "process", "filter", "verify")] == ["done"] * 4
    assert data["engine_url"].startswith("http://127.0.0.1:")
    assert data["stages"]["filter"]["report"]["difficulty"]["predictor"] == "llm"
    process_reasons = {r["id"]: r["reason"] for r in data["stages"]["process"]["rejections"]}
    assert process_reasons["bundled/staircase-copy"] == "eval_ngram_overlap"
    train = load_problems(out / "train.jsonl")
    assert len(train) == data["train_problems"] > 0
    assert (out / "verify" / "statistics.json").is_file()


def test_example_configs_load_and_default_yaml_is_the_embedded_default():
    from megatron_mc.data.pipeline.config import load_config

    examples = Path(__file__).resolve().parents[2] / "examples" / "data"
    assert load_config(examples / "default.yaml") == load_config(None)
    user = load_config(examples / "user_files.yaml")
    assert [s.kind for s in user.collect.sources][:2] == ["livecodebench", "taco"]
    assert user.process.decontaminate.eval_sets[0].format == "livecodebench"


def test_engine_and_evaluation_set_contents_are_part_of_the_stage_hashes(tmp_path):
    out = tmp_path / "run"
    source = problems_file(tmp_path / "mine.jsonl", 3)
    eval_set = tmp_path / "eval.jsonl"
    eval_set.write_text(json.dumps({"id": "eval/0", "kind": "stdio", "tests": [{"input": "1\n", "output": "1\n"}],
                                    "statement": "Nothing like the training problems at all."}) + "\n")
    config = write_config(tmp_path / "data.yaml", source, out,
                          collect={"sources": [{"kind": "jsonl", "path": str(source)}]},
                          process={"decontaminate": {"eval_sets": [{"path": str(eval_set)}]}})
    for stage in ("collect", "process", "filter"):
        assert mc_data(stage, "--config", str(config), "--quiet", cwd=tmp_path).returncode == 0
    assert manifest(out)["stages"]["process"]["out"] == 3
    # the evaluation set now holds double-0's statement: process runs again and drops it
    double_0 = json.loads(source.read_text().splitlines()[0])
    eval_set.write_text(json.dumps({"id": "eval/0", "kind": "stdio", "tests": [{"input": "1\n", "output": "1\n"}],
                                    "statement": double_0["statement"]}) + "\n")
    again = mc_data("process", "--config", str(config), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "skipped" not in again.stderr
    process = manifest(out)["stages"]["process"]
    assert process["out"] == 2 and process["rejections_by_reason"] == {"eval_ngram_overlap": 1}
    # another engine: filter runs again (its predictor and reference policy would be another model)
    assert mc_data("filter", "--config", str(config), "--quiet", cwd=tmp_path).returncode == 0   # new input
    assert "filter: done before" in mc_data("filter", "--config", str(config), cwd=tmp_path).stderr
    for override in ("engine.model_path=/models/other", "engine.url=http://127.0.0.1:9"):
        rerun = mc_data("filter", "--config", str(config), "--set", override, cwd=tmp_path)
        assert rerun.returncode == 0, rerun.stderr
        assert "filter: done before" not in rerun.stderr


def test_statistics_before_selection_are_the_filter_scored_problems(tmp_path):
    out = tmp_path / "run"
    source = problems_file(tmp_path / "mine.jsonl", 10)
    config = write_config(tmp_path / "data.yaml", source, out,
                          collect={"sources": [{"kind": "jsonl", "path": str(source)},
                                               {"kind": "tiny_tasks", "limit": 10}]},
                          filter={"difficulty": {"predictor": "heuristic"}})
    done = mc_data("run", "--config", str(config), "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    stages = manifest(out)["stages"]
    scored = (out / "filter" / "scored.jsonl").read_text().count("\n")
    assert scored == stages["filter"]["in"] - stages["filter"]["rejections_by_reason"].get("too_few_tests", 0)
    assert stages["filter"]["out"] < scored   # selection dropped some: "before" is not verify's input
    statistics = json.loads((out / "verify" / "statistics.json").read_text())
    assert statistics["before"]["total"] == scored
    assert stages["verify"]["report"]["statistics"]["before"]["total"] == scored
    assert statistics["after"]["total"] == stages["verify"]["out"]


def test_stage_errors_are_messages_not_tracebacks(tmp_path):
    out = tmp_path / "run"
    source = problems_file(tmp_path / "mine.jsonl", 3)
    config = write_config(tmp_path / "data.yaml", source, out,
                          collect={"sources": [{"kind": "jsonl", "path": str(source)}]},
                          filter={"difficulty": {"predictor": "llm"}})
    failed = mc_data("run", "--config", str(config), cwd=tmp_path)
    assert failed.returncode == 2
    assert "mc-data: error: filter.difficulty.predictor is 'llm' but there is no endpoint" in failed.stderr
    assert "Traceback" not in failed.stderr
    ignored = mc_data("run", "--config", str(config), "--input", str(source), cwd=tmp_path)
    assert ignored.returncode == 2 and "--input is the input of one stage after collect" in ignored.stderr
