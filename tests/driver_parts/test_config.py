"""The run config: YAML + --set overrides, errors that name the key, the resolved config file."""
import pytest
import yaml

from megatron_mc.config import RunConfig, config_from_dict, load_config, parse_override, write_resolved_config
from megatron_mc.typed_config import ConfigError


def _write(tmp_path, text):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def test_yaml_and_overrides_keep_their_types(tmp_path):
    path = _write(tmp_path, "train:\n  lr: 1e-6\n  max_steps: 10\neval:\n  k: [1, 4]\n  n_samples: 4\n")
    cfg = load_config(path, ["train.lr=3e-6", "eval.k=[1,2]", "logging.wandb_project=null",
                             "cluster.gpus_per_node=2", "judge.stop_at_first_failure=false"])
    assert cfg.train.lr == 3e-6 and cfg.train.max_steps == 10
    assert cfg.eval.k == [1, 2]
    assert cfg.logging.wandb_project is None
    assert cfg.cluster.gpus_per_node == 2 and cfg.judge.stop_at_first_failure is False


def test_parse_override():
    assert parse_override("a.b=1.5") == ("a.b", 1.5)
    assert parse_override("a.b=x=y") == ("a.b", "x=y")
    assert parse_override("a=") == ("a", "")
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_override("train.lr")


@pytest.mark.parametrize("text, overrides, message", [
    ("trian:\n  lr: 1\n", [], "unknown key 'trian'; did you mean 'train'"),
    ("train:\n  learning_rate: 1\n", [], "unknown key 'train.learning_rate'"),
    ("", ["train.mini_bach_size=4"], "unknown key 'train.mini_bach_size'; did you mean 'mini_batch_size'"),
    ("", ["train.max_steps=many"], "train.max_steps: expected an integer, got 'many'"),
    ("", ["cluster.mode=colocated"], "cluster.mode: 'colocated' is not one of .*did you mean 'colocate'"),
    ("train:\n  train_batch_size: 10\n  mini_batch_size: 4\n", [], "multiple of train.mini_batch_size"),
    ("", ["eval.k=[1,32]"], "eval.k: 32 must be between 1 and eval.n_samples"),
    ("", ["eval.date_from=August"], "not an ISO date"),
    ("", ["cluster.mode=disaggregate"], "cluster.engine_gpus must be between 1 and 7"),
    ("", ["data.source=file"], "data.train_problems is required"),
])
def test_errors_name_the_key_and_suggest(tmp_path, text, overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, text), overrides)


def test_error_names_the_file(tmp_path):
    path = _write(tmp_path, "judge:\n  num_workers: 0\n")
    with pytest.raises(ConfigError, match=rf"{path}: judge: judge.num_workers must be > 0"):
        load_config(path)
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")


def test_resolved_config_is_complete_and_reloads_identically(tmp_path):
    cfg = config_from_dict({"run_dir": str(tmp_path / "run")}, ["train.seed=5"])
    written = write_resolved_config(cfg)
    assert written == tmp_path / "run" / "config.yaml"
    data = yaml.safe_load(written.read_text())
    assert data["train"]["seed"] == 5 and "keep_last" in data["checkpoint"]
    assert load_config(written) == cfg


def test_defaults_make_a_valid_tree():
    cfg = RunConfig()
    assert cfg.train.optimizer_steps_per_rl_step == 4
    assert cfg.checkpoint_dir.as_posix() == "runs/default/checkpoints"
    assert cfg.cluster.train_gpus == 8


def test_algo_preset_then_key_by_key_overrides(tmp_path):
    path = _write(tmp_path, "algo:\n  preset: microcoder_grpo\n  eps_clip_high: 0.3\n")
    cfg = load_config(path, ["algo.entropy_coef=0.01"])
    assert cfg.algo.preset == "microcoder_grpo"
    assert cfg.algo.kl_coef == 0.0 and cfg.algo.truncation_mask == "conditional"  # from the preset
    assert (cfg.algo.eps_clip_high, cfg.algo.entropy_coef) == (0.3, 0.01)
    written = write_resolved_config(cfg, tmp_path / "run")
    assert load_config(written) == cfg


@pytest.mark.parametrize("overrides, message", [
    (["algo.preset=microcoder_grop"], "unknown preset 'microcoder_grop'; did you mean 'microcoder_grpo'"),
    (["algo.eps_clip_hi=0.3"], "unknown key 'algo.eps_clip_hi'; did you mean 'eps_clip_high'"),
    (["parallel.tp=3"], "parallel: world size 8 is not divisible by tp\\*pp\\*cp = 3\\*1\\*1"),
    (["parallel.tp=2", "parallel.sequence_parallel=maybe"], "parallel.sequence_parallel: expected true or false"),
    (["model.dtype=bf16"], "model.dtype: 'bf16' is not one of"),
    (["data.format=lcb"], "data.format: unknown problem format 'lcb'"),
    (["train.mini_batch_size=1", "train.n_samples_per_prompt=2"], "divisible by the data-parallel size 8"),
])
def test_colleague_sections_are_validated_with_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({}, overrides)


def test_rollout_follows_run_level_keys_and_must_agree():
    cfg = config_from_dict({"train": {"n_samples_per_prompt": 4},
                            "cluster": {"mode": "disaggregate", "engine_gpus": 2, "num_nodes": 1, "gpus_per_node": 4},
                            "rollout": {"num_engines": 2}})
    assert cfg.rollout.group_size == 4 and cfg.rollout.placement == "disaggregated"
    assert cfg.rollout.judge_workers == cfg.judge.num_workers == 2
    with pytest.raises(ConfigError, match="rollout.group_size is 16 but train.n_samples_per_prompt is 8; set only"):
        config_from_dict({"rollout": {"group_size": 16}})
    with pytest.raises(ConfigError, match="rollout.placement is 'disaggregated' but cluster.mode is 'colocate'"):
        config_from_dict({}, ["rollout.placement=disaggregated"])
    with pytest.raises(ConfigError, match="must equal cluster.engine_gpus = 4"):
        config_from_dict({"cluster": {"mode": "disaggregate", "engine_gpus": 4}, "parallel": {"tp": 2}})
    with pytest.raises(ConfigError, match="rollout.max_new_tokens must be an integer >= 1"):
        config_from_dict({}, ["rollout.max_new_tokens=0"])


def test_trainer_and_engine_rope_scaling_must_agree():
    yarn = "{rope_type: yarn, factor: 2.0, original_max_position_embeddings: 32768}"
    with pytest.raises(ConfigError, match="model.rope_scaling .* and rollout.rope_scaling .* differ"):
        config_from_dict({}, [f"model.rope_scaling={yarn}"])
    cfg = config_from_dict({}, [f"model.rope_scaling={yarn}", f"rollout.rope_scaling={yarn}"])
    assert cfg.model.rope_scaling == cfg.rollout.rope_scaling


def test_routes_can_be_asked_for_without_replay_but_replay_needs_them(tmp_path):
    cfg = load_config(_write(tmp_path, "rollout:\n  return_routed_experts: true\n"))
    assert cfg.rollout.return_routed_experts and not cfg.algo.routing_replay  # routing agreement only
    with pytest.raises(ConfigError, match="rollout.return_routed_experts is False but algo.routing_replay is True"):
        load_config(_write(tmp_path, "algo:\n  routing_replay: true\nrollout:\n  return_routed_experts: false\n"))
