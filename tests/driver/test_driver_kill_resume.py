"""`mc-train` SIGKILLed in the middle of a step and restarted with --resume auto consumes the same
problems in the same order as an uninterrupted run: none skipped, none repeated. Also under train.async,
where the next step's problems were already drawn (and generated) when the checkpoint was taken."""
import os
import signal
import subprocess

import pytest

from megatron_mc.run_state import complete_checkpoints
from tests.driver.tiny_run import (EXACT, MC_TRAIN, REPO, STEPS, TINY_CONFIG, driver_env, metrics_rows,
                                   problems_per_step, run_mc_train, small_run_overrides,
                                   stop_orphaned_servers)

pytestmark = [pytest.mark.slow, pytest.mark.distributed]


ASYNC = ("cluster.mode=disaggregate", "cluster.engine_gpus=1", "train.async.mode=one_step")


def _kill_after_checkpoint(run_dir, step: int, *extra: str) -> list[str]:
    """Start mc-train, SIGKILL its whole process group as soon as step `step` is checkpointed (the next
    step has begun), and return what it printed."""
    args = [*MC_TRAIN, "--config", str(TINY_CONFIG), *small_run_overrides(run_dir, STEPS, *EXACT, *extra)]
    proc = subprocess.Popen(args, cwd=REPO, env=driver_env(), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            text=True, start_new_session=True)
    seen = []
    try:
        for line in proc.stderr:
            seen.append(line.rstrip())
            if line.startswith(f"checkpoint saved: step {step} "):
                break
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the driver and everything it started (Ray, engine, ranks)
        except ProcessLookupError:
            pass  # it had already exited: the assertions below say how far it got
        proc.wait(timeout=60)
        stop_orphaned_servers(run_dir)
    return seen


@pytest.mark.timeout(1200)  # three runs of the real stack
@pytest.mark.parametrize("mode", [(), ASYNC], ids=["sync", "async_one_step"])
def test_sigkill_mid_step_then_resume_replays_the_same_problems(tmp_path, uninterrupted_run, mode):
    assert uninterrupted_run.result.returncode == 0, uninterrupted_run.result.stderr[-4000:]
    reference = problems_per_step(uninterrupted_run.run_dir)  # asynchronous runs draw the same problems
    assert sorted(reference) == [1, 2]

    killed_dir = tmp_path / "killed"
    seen = _kill_after_checkpoint(killed_dir, 1, *mode)
    assert any(line.startswith("checkpoint saved: step 1 ") for line in seen), "\n".join(seen[-30:])
    assert [p.name for p in complete_checkpoints(killed_dir / "checkpoints")] == ["step_000001"]
    assert max(r["step"] for r in metrics_rows(killed_dir)) == 1  # step 2 never finished

    result = run_mc_train(killed_dir, STEPS, *EXACT, *mode, resume="auto")
    assert result.returncode == 0, result.stderr[-4000:]
    assert "resumed from" in result.stderr and "(step 1)" in result.stderr
    assert [r["step"] for r in metrics_rows(killed_dir)] == [0, 1, 2]
    assert problems_per_step(killed_dir) == reference
    consumed = [pid for step in sorted(reference) for pid in reference[step]]
    assert len(consumed) == len(set(consumed))  # 8 problems of 164: one epoch, none twice
    if mode:
        assert all(row["async/staleness_max"] <= 1 for row in metrics_rows(killed_dir) if row["step"] > 0)
