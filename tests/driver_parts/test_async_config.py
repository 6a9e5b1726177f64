"""train.async: the YAML key `async` (a Python keyword) maps to its field, `mode: off` reads as off, the
placement it needs and the staleness it allows are checked up front, and the off-policy correction is
on whenever it is."""
import pytest
import yaml

from megatron_mc.config import dump_config, load_config
from megatron_mc.driver.session import rollout_manager
from rollout.client import SGLangClient
from megatron_mc.typed_config import ConfigError

DISAGGREGATED = "cluster:\n  mode: disaggregate\n  gpus_per_node: 2\n  engine_gpus: 1\n"


def _load(tmp_path, text, overrides=()):
    path = tmp_path / "run.yaml"
    path.write_text(DISAGGREGATED + text)
    return load_config(path, list(overrides))


def test_async_section_round_trips_and_turns_on_the_correction(tmp_path):
    cfg = _load(tmp_path, "train:\n  async:\n    mode: bounded\n    max_staleness: 3\n")
    assert cfg.train.async_.mode == "bounded" and cfg.train.async_.batches_ahead == 3
    assert cfg.algo.rollout_correction == "tis"  # none by default, on because tokens will be off-policy
    written = yaml.safe_load(dump_config(cfg))
    assert written["train"]["async"]["max_staleness"] == 3 and written["algo"]["rollout_correction"] == "tis"
    again = _load(tmp_path, yaml.safe_dump({"train": written["train"]}))
    assert again.train.async_ == cfg.train.async_


def test_mode_off_is_off_and_an_explicit_correction_is_kept(tmp_path):
    assert _load(tmp_path, "train:\n  async:\n    mode: off\n").train.async_.batches_ahead == 0
    assert _load(tmp_path, "", ["train.async.mode=off"]).algo.rollout_correction == "none"
    cfg = _load(tmp_path, "algo:\n  rollout_correction: icepop\n", ["train.async.mode=one_step"])
    assert cfg.algo.rollout_correction == "icepop" and cfg.train.async_.batches_ahead == 1


@pytest.mark.parametrize("overrides, message", [
    (["cluster.mode=colocate", "cluster.engine_gpus=0", "train.async.mode=one_step"],
     "train.async.mode 'one_step' needs cluster.mode: disaggregate"),
    (["train.async.mode=one_step", "train.async.max_staleness=2"], "mode one_step means 1; use mode: bounded"),
    (["train.async.max_staleness=0"], r"train.async.max_staleness must be > 0"),
    (["train.async.mode=two_step"], "train.async.mode: 'two_step' is not one of"),
    (["train.asynk.mode=one_step"], "unknown key 'train.asynk'; did you mean 'async'"),
    (["train.async.partial=continue"], "unknown key 'train.async.partial'; did you mean 'partial_rollout'"),
])
def test_bad_async_settings_name_the_key(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        _load(tmp_path, "", overrides)


@pytest.mark.parametrize("overrides, continues", [
    (["train.async.mode=one_step"], True),
    (["train.async.mode=one_step", "train.async.partial_rollout=restart"], False),
    (["train.async.mode=off"], False),
])
def test_the_sessions_manager_continues_partial_rollouts_as_configured(tmp_path, overrides, continues):
    cfg = _load(tmp_path, "", overrides)
    manager = rollout_manager(cfg, SGLangClient("http://127.0.0.1:9"), prompts=None, pool=None)
    assert manager.continue_partial is continues
