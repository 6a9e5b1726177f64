"""data.source: the tiny default's problems and model, or files named in the config."""
import pytest

from megatron_mc.config import config_from_dict
from megatron_mc.data import sources, tiny_tasks
from megatron_mc.data.tiny_default import CACHE_ENV


def test_tiny_tasks_source_uses_the_cached_default(tiny_default, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tiny_default.root.parent.parent))
    data = sources.load_run_data(config_from_dict({}))
    assert [p.id for p in data.train] == [p.id for p in tiny_tasks.make_problems("train")]
    assert [p.id for p in data.eval] == [p.id for p in tiny_tasks.make_problems("held_out")]
    assert data.hf_dir == tiny_default.hf_dir
    warm = sources.load_run_data(config_from_dict({"model": {"hf_dir": "/warm/start"}}))
    assert str(warm.hf_dir) == "/warm/start"


def test_file_source_reads_the_configured_files(tiny_default):
    cfg = config_from_dict({"data": {"source": "file", "train_problems": str(tiny_default.held_out_problems)},
                            "eval": {"problems_file": str(tiny_default.held_out_problems)},
                            "model": {"hf_dir": str(tiny_default.hf_dir)}})
    data = sources.load_run_data(cfg)
    assert len(data.train) == len(data.eval) == len(tiny_tasks.make_problems("held_out"))
    with pytest.raises(ValueError, match="model.hf_dir is required"):
        sources.load_run_data(config_from_dict({"data": {"source": "file", "train_problems": "x.jsonl"}}))
