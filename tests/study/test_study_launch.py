"""`mc-study launch` of a tiny local study runs the real mc-train once per run (two presets, one seed, two
steps each); `status` follows each run's state; launching again skips complete runs and resumes an
interrupted one from its checkpoint; a run whose driver fails is reported failed with the driver's error;
`report` turns the runs' metrics files into its table, comparisons, curves and links."""
import contextlib
import csv
import dataclasses
import io
import json
import statistics
from dataclasses import dataclass
from pathlib import Path

import pytest

from megatron_mc.config import load_config
from megatron_mc.study.cli import main
from megatron_mc.study.launch_record import write_record
from megatron_mc.study.report_table import aggregate, run_figures
from megatron_mc.study.runs import expand
from megatron_mc.study.study_file import load_study
from tests.driver.tiny_run import metrics_rows
from tests.study.study_files import small_set, write_study

pytestmark = [pytest.mark.slow, pytest.mark.distributed]

GRPO, MICROCODER = "preset-grpo_seed1", "preset-microcoder-grpo_seed1"


def mc_study(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(args))
    return code, out.getvalue()


@dataclass
class LaunchedStudy:
    path: Path
    out: Path
    status_before: str
    code: int
    launch_output: str


@pytest.fixture(scope="module")
def launched(tmp_path_factory) -> LaunchedStudy:
    folder = tmp_path_factory.mktemp("study")
    path = write_study(folder, "algorithms", axes={"algo.preset": ["grpo", "microcoder_grpo"]}, seeds=[1],
                       set={**small_set(folder, 2), "eval.interval": 0})
    _, before = mc_study("status", str(path))
    code, output = mc_study("launch", str(path))
    return LaunchedStudy(path, folder / "algorithms", before, code, output)


def status_lines(path: Path) -> dict[str, str]:
    _, out = mc_study("status", str(path))
    return {line.split()[0]: line for line in out.splitlines()[1:-1]}


def test_launch_runs_every_run_with_its_own_config_and_status_follows(launched):
    assert [line.split()[:2] for line in launched.status_before.splitlines()[1:-1]] == \
        [[GRPO, "pending"], [MICROCODER, "pending"]]
    assert launched.code == 0, launched.launch_output
    for name, preset in ((GRPO, "grpo"), (MICROCODER, "microcoder_grpo")):
        run_dir = launched.out / name
        assert [row["step"] for row in metrics_rows(run_dir)] == [0, 1, 2], (run_dir / "study.log").read_text()
        resolved = load_config(run_dir / "config.yaml")  # what the driver ran with
        assert (resolved.algo.preset, resolved.train.seed, resolved.run_dir) == (preset, 1, str(run_dir))
        final = [row for row in metrics_rows(run_dir) if "eval/pass@1" in row][-1]
        assert status_lines(launched.path)[name].split()[1:3] == ["complete", "2/2"]
        assert f"pass@1 {100 * final['eval/pass@1']:.1f}%" in status_lines(launched.path)[name]


def test_report_table_is_the_runs_metrics_with_curves_and_links(launched):
    code, out = mc_study("report", str(launched.path))
    assert code == 0
    report = Path(out.strip())
    text = report.read_text()
    finals = {}
    for name in (GRPO, MICROCODER):
        evaluated = [row for row in metrics_rows(launched.out / name) if "eval/pass@1" in row]
        assert [row["step"] for row in evaluated] == [0, 2]  # eval.interval 0: before and after training
        finals[name] = evaluated[-1]["eval/pass@1"]
        best = max(row["eval/pass@2"] for row in evaluated)
        label = f"algo.preset={'grpo' if name == GRPO else 'microcoder_grpo'}"
        row = next(line for line in text.splitlines() if line.startswith(f"| {label} | 1 |"))
        expected = [finals[name], max(r["eval/pass@1"] for r in evaluated), evaluated[-1]["eval/pass@2"], best]
        assert [cell.strip() for cell in row.strip("| ").split("|")][2:6] == [f"{100 * v:.1f}" for v in expected]
        assert f"[run](../{name})" in text and f"[eval](../{name}/eval)" in text
    with open(report.parent / "runs.csv") as f:
        by_run = {row["run"]: row for row in csv.DictReader(f)}
    assert float(by_run[GRPO]["final eval/pass@1"]) == finals[GRPO]
    tokens = sum(r["rollout/response_len_mean"] for r in metrics_rows(launched.out / GRPO) if r["step"] > 0) * 4 * 4
    assert float(by_run[GRPO]["tokens"]) == pytest.approx(tokens)
    difference = 100 * (finals[MICROCODER] - finals[GRPO])
    assert (f"- algo.preset=microcoder_grpo vs grpo: {difference:+.1f} points final pass@1; seed spread n/a -> "
            "spread unknown (one seed)") in text
    assert "![curves_algo.preset](curves_algo.preset.png)" in text
    assert (report.parent / "curves_algo.preset.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_seeds_of_one_point_give_its_mean_and_spread(launched):
    study = load_study(launched.path)
    grpo, microcoder = (run_figures(run, "cpu_hours") for run in expand(study))
    as_seed_2 = dataclasses.replace(microcoder, run=dataclasses.replace(grpo.run, seed=2))
    final = aggregate([grpo, as_seed_2])[grpo.run.label]["final eval/pass@1"]
    values = [grpo.values["final eval/pass@1"], microcoder.values["final eval/pass@1"]]
    assert (final.mean, final.spread, final.n) == (statistics.fmean(values), statistics.stdev(values), 2)


def test_launch_again_skips_complete_runs_and_resumes_an_interrupted_one(launched):
    grpo_metrics = (launched.out / GRPO / "metrics.jsonl").read_text()
    # what a kill during the last step's checkpoint leaves: step 1 is the newest complete checkpoint
    microcoder = launched.out / MICROCODER
    (microcoder / "checkpoints" / "step_000002" / "COMPLETE").unlink()
    write_record(microcoder, launcher="local", pid=1, returncode=-9)
    assert status_lines(launched.path)[MICROCODER].split()[1:3] == ["interrupted", "2/2"]

    code, output = mc_study("launch", str(launched.path))
    assert code == 0, output
    assert f"[1/2] {GRPO}: complete, skipped" in output
    assert f"[2/2] {MICROCODER} (resuming)" in output
    assert (launched.out / GRPO / "metrics.jsonl").read_text() == grpo_metrics
    log = (microcoder / "study.log").read_text()
    assert "resumed from" in log and "(step 1)" in log
    assert [row["step"] for row in metrics_rows(microcoder)] == [0, 1, 2]
    assert [line.split()[1] for line in status_lines(launched.path).values()] == ["complete", "complete"]


def test_a_run_whose_driver_fails_is_reported_failed_with_its_error(tmp_path):
    missing = tmp_path / "no_such_problems.jsonl"
    path = write_study(tmp_path, "broken", seeds=[3],
                       set={**small_set(tmp_path, 1), "eval.problems_file": str(missing)})
    code, output = mc_study("launch", str(path))
    assert code == 1
    line = status_lines(path)["seed3"]
    # the reason is the driver's last error line, naming the missing file
    assert line.split()[1] == "failed" and f"exit code 2: mc-train: {missing}: no such" in line, line
    assert json.loads((tmp_path / "broken" / "seed3" / "study_launch.json").read_text())["returncode"] == 2
