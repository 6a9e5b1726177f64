"""`mc-study plan` lists a study's runs (grid or listed points, x seeds) with their run dirs and each run's
layout and memory check, and a study file with a mistake is refused naming the file, the key and the run."""
import pytest

from megatron_mc.study.cli import main
from tests.driver.tiny_run import REPO
from tests.study.study_files import write_study


def plan(capsys, path) -> tuple[int, str, str]:
    code = main(["plan", str(path)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_grid_is_every_combination_of_the_axes_times_the_seeds(tmp_path, capsys):
    path = write_study(tmp_path, "grid", axes={"algo.preset": ["grpo", "dapo"], "rollout.temperature": [1.0, 1.2]},
                       seeds=[1, 2], set={"train.max_steps": 3})
    code, out, err = plan(capsys, path)
    assert code == 0, err
    names = [line.split()[0] for line in out.splitlines() if "[pending]" in line]
    assert names == [f"preset-{p}_temperature-{t}_seed{s}" for p in ("grpo", "dapo") for t in (1.0, 1.2)
                     for s in (1, 2)]
    assert f"run dir: {tmp_path / 'grid' / 'preset-dapo_temperature-1.2_seed2'}" in out
    assert "algo.preset=dapo, rollout.temperature=1.2, seed 2" in out
    assert out.count("CPU run (embedded engine, 2 train ranks): no GPU memory check") == 8


def test_listed_points_run_as_written_and_gpu_runs_get_the_planners_memory_check(tmp_path, capsys):
    base = REPO / "examples" / "configs" / "qwen3_30b_a3b_moe.yaml"
    path = write_study(tmp_path, "points", base=str(base), seeds=[7],
                       points=[{"algo.preset": "grpo"}, {"algo.preset": "dapo", "cluster.gpu_memory_gib": 40}])
    code, out, err = plan(capsys, path)
    assert code == 0, err
    assert "study points: 2 runs (listed points x 1 seed)" in out
    first, second = out.split("\npreset-dapo_gpu-memory-gib-40_seed7  [pending]")
    assert "preset-grpo_seed7" in first
    assert "2 nodes x 8 GPUs, colocate, tp=2 pp=2 ep=8 dp=4; peak 65.6 of 80 GiB per GPU: fits" in first
    assert "of 40 GiB per GPU: DOES NOT FIT" in second


@pytest.mark.parametrize("fields, message", [
    ({"axes": {"algo.preset": ["grpo"]}, "seedz": [1]}, "unknown key 'seedz'; did you mean 'seeds'?"),
    ({"axes": {"algo.presett": ["grpo"]}}, "axes: unknown key 'algo.presett'; did you mean 'preset'?"),
    ({"points": [{"train.sed": 1}]}, "points[0]: unknown key 'train.sed'; did you mean 'seed'?"),
    ({"axes": {"algo.preset": ["grpo", "ppo"]}}, "run preset-ppo_seed1234: algo.preset: unknown preset 'ppo'"),
    ({"axes": {"train.train_batch_size": [12]}}, "run train-batch-size-12_seed1234: train: train.train_batch_size "
                                                 "(12) must be a multiple of train.mini_batch_size (8)"),
    ({"axes": {"rollout.tp_size": [4]}, "set": {"cluster.num_nodes": 2}},
     "run tp-size-4_seed1234: rollout.tp_size 4 is wider than a node"),
    ({"axes": {"algo.preset": ["grpo"]}, "points": [{"algo.preset": "dapo"}]}, "give either axes"),
    ({"axes": {"algo.preset": ["grpo"]}, "launcher": {"kind": "slurm"}}, "launcher.script is required"),
])
def test_a_bad_study_file_is_refused_naming_the_file_and_key(tmp_path, capsys, fields, message):
    path = write_study(tmp_path, "bad", **fields)
    code, out, err = plan(capsys, path)
    assert code == 2 and out == ""
    assert err.startswith(f"mc-study: {path}: ") and message in err, err


def test_base_is_relative_to_the_study_file_and_the_example_studies_plan(tmp_path, capsys):
    path = write_study(tmp_path, "relative", base="../configs/tiny_cpu.yaml", seeds=[1])
    code, _, err = plan(capsys, path)
    assert code == 2 and f"base: {tmp_path.parent / 'configs' / 'tiny_cpu.yaml'} is not a file" in err
    studies = REPO / "examples" / "studies"
    for example in sorted(studies.glob("*.yaml")):
        code, out, err = plan(capsys, example)
        assert code == 0, f"{example}: {err}"


def test_a_failed_runs_reason_comes_from_its_last_attempt(tmp_path):
    from megatron_mc.study.launch_record import LAUNCH_MARK
    from megatron_mc.study.status import error_line

    log = tmp_path / "study.log"
    log.write_text(f"{LAUNCH_MARK} 1 ====\nmc-train: unknown key 'train.lrr'\n"
                   f"{LAUNCH_MARK} 2 ====\nTraceback (most recent call last):\nRuntimeError: gloo timed out\n")
    assert error_line(log) == "RuntimeError: gloo timed out"
    log.write_text(log.read_text() + f"{LAUNCH_MARK} 3 ====\nstep 1/8\nmc-train: no such config file\nbye\n")
    assert error_line(log) == "mc-train: no such config file"
