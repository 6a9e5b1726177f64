"""A restarted engine under a transport that leaves nothing on disk (distributed: a gloo group here, NCCL
on a cluster) comes back with the start weights and version 0; at the next step the driver finds it,
forms the weight-update group anew, pushes the newest weights to every engine and routes to it again
(driver/gpu_time_share.py readmit_restarted), in the colocated order of a real run."""
import os
import signal
import time

import pytest

from megatron_mc.config import load_config
from megatron_mc.data.tiny_default import prepare_tiny_default
from megatron_mc.driver.gpu_time_share import GpuTimeShare
from megatron_mc.driver.session import open_session
from tests.driver.tiny_run import TINY_CONFIG

pytestmark = [pytest.mark.slow, pytest.mark.distributed]


def _wait(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what} within {timeout_s:.0f} s")


def test_a_restarted_engine_gets_the_newest_weights_through_a_new_group(tmp_path):
    cfg = load_config(TINY_CONFIG, [f"run_dir={tmp_path / 'run'}", f"model.hf_dir={prepare_tiny_default().hf_dir}",
                                    "rollout.weight_sync=distributed", "rollout.num_engines=2",
                                    "judge.num_workers=1"])
    with open_session(cfg) as session:
        share = GpuTimeShare(session)
        share.to_engines(0)  # colocated start: the engines released their memory while the trainer built
        share.to_trainer()
        share.to_engines(1)
        assert session.fleet.engines_needing_weights(1) == []
        assert share.readmit_restarted(1) == []  # nothing restarted: nothing pushed

        os.kill(session.fleet.info()[0]["pid"], signal.SIGKILL)
        # out of the router while its weights are old
        _wait(lambda: session.fleet.info()[0]["restarts"] and not session.fleet.info()[0]["routed"], 120,
              "engine 0 restarted and left the router")
        assert session.fleet.engines_needing_weights(1) == [0]

        assert share.readmit_restarted(1) == [0]
        assert session.fleet.engines_needing_weights(1) == []
        info = session.fleet.info()
        assert all(engine["routed"] for engine in info)
