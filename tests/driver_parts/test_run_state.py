"""Checkpoint step layout: completeness marker, keep-last-N pruning and resume selection."""
import json

import pytest

from megatron_mc.run_state import (ResumeError, RunState, begin_checkpoint, complete_checkpoints,
                                   find_resume_checkpoint, finish_checkpoint, load_run_state, step_dir,
                                   write_atomic)


def _save(root, step, keep_last=3):
    folder = begin_checkpoint(root, step)
    (folder / "model" / "shard").write_text("w")
    finish_checkpoint(folder, RunState(step, {"epoch": 0, "position": step}, {"t": 0.9}, [{"step": step}]),
                      keep_last)
    return folder


def test_layout_and_round_trip(tmp_path):
    folder = _save(tmp_path / "checkpoints", 123)
    assert folder == tmp_path / "checkpoints" / "step_000123"
    assert (folder / "COMPLETE").read_text() == "123\n"
    state = load_run_state(folder)
    assert state == RunState(123, {"epoch": 0, "position": 123}, {"t": 0.9}, [{"step": 123}])


def test_keep_last_prunes_old_and_stale_incomplete_but_not_a_newer_save_in_progress(tmp_path):
    root = tmp_path / "checkpoints"
    _save(root, 1)
    begin_checkpoint(root, 2)  # crashed save
    for step in (3, 4, 5):
        _save(root, step, keep_last=2)
    in_progress = begin_checkpoint(root, 6)
    _save(root, 7, keep_last=2)
    assert [p.name for p in complete_checkpoints(root)] == ["step_000005", "step_000007"]
    assert sorted(p.name for p in root.iterdir()) == ["step_000005", "step_000007"]
    assert not in_progress.exists()  # older than the newest complete one: a dead leftover


def test_auto_resume_picks_newest_complete(tmp_path):
    assert find_resume_checkpoint(tmp_path, "auto") is None
    root = tmp_path / "checkpoints"
    _save(root, 10)
    _save(root, 20)
    begin_checkpoint(root, 30)  # killed before COMPLETE
    assert find_resume_checkpoint(tmp_path, "auto") == step_dir(root, 20)
    assert find_resume_checkpoint(tmp_path, str(step_dir(root, 10))) == step_dir(root, 10)


def test_explicit_resume_errors_name_the_path(tmp_path):
    root = tmp_path / "checkpoints"
    begin_checkpoint(root, 30)
    with pytest.raises(ResumeError, match="incomplete"):
        find_resume_checkpoint(tmp_path, str(step_dir(root, 30)))
    with pytest.raises(ResumeError, match="no such directory"):
        find_resume_checkpoint(tmp_path, str(tmp_path / "nope"))


def test_begin_refuses_to_overwrite_a_complete_checkpoint(tmp_path):
    _save(tmp_path, 5)
    with pytest.raises(FileExistsError):
        begin_checkpoint(tmp_path, 5)


def test_write_atomic_leaves_no_temp_files(tmp_path):
    target = tmp_path / "a" / "state.json"
    write_atomic(target, json.dumps({"x": 1}))
    write_atomic(target, b'{"x": 2}')
    assert json.loads(target.read_text()) == {"x": 2}
    assert [p.name for p in target.parent.iterdir()] == ["state.json"]
