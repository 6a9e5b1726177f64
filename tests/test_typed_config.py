from dataclasses import dataclass, field
from typing import Literal, Optional

import pytest

from megatron_mc.typed_config import ConfigError, from_dict, set_by_path, to_dict


@dataclass
class Inner:
    lr: float = 1e-6
    mode: Literal["token-mean", "seq-mean"] = "token-mean"
    steps: Optional[int] = None
    tags: list[str] = field(default_factory=list)

    def __post_init__(self):
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")


@dataclass
class Root:
    algo: Inner = field(default_factory=Inner)
    name: str = "run"


def test_builds_nested_tree_and_round_trips():
    cfg = from_dict(Root, {"algo": {"lr": "1e-5", "mode": "seq-mean", "steps": 3, "tags": ["a"]}})
    assert cfg.algo == Inner(lr=1e-5, mode="seq-mean", steps=3, tags=["a"])
    assert from_dict(Root, to_dict(cfg)) == cfg


@pytest.mark.parametrize(
    "data, message",
    [
        ({"algoo": {}}, "unknown key 'algoo'; did you mean 'algo'?"),
        ({"algo": {"lrr": 1.0}}, "unknown key 'algo.lrr'; did you mean 'lr'?"),
        ({"algo": {"mode": "token_mean"}}, "algo.mode: 'token_mean' is not one of"),
        ({"algo": {"lr": -1}}, "algo: lr must be > 0"),
        ({"algo": {"steps": "many"}}, "algo.steps: expected an integer"),
        ({"algo": {"tags": "a"}}, "algo.tags: expected a list"),
        ({"name": 3}, "name: expected a string"),
    ],
)
def test_errors_name_the_key(data, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("?", r"\?")):
        from_dict(Root, data)


def test_set_by_path_checks_keys_against_the_tree():
    data = {}
    set_by_path(data, "algo.lr", 0.5, Root)
    assert data == {"algo": {"lr": 0.5}}
    with pytest.raises(ConfigError, match="unknown key 'algo.moode'; did you mean 'mode'"):
        set_by_path(data, "algo.moode", "x", Root)
