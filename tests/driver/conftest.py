"""One uninterrupted two-step run of the tiny default (TP=1, two data-parallel ranks) shared by the GRPO
step test and the kill-and-resume test, which compares a killed and resumed run against it."""
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.driver.tiny_run import EXACT, STEPS, run_mc_train


@dataclass
class FinishedRun:
    run_dir: Path
    result: subprocess.CompletedProcess


@pytest.fixture(scope="session")
def uninterrupted_run(tmp_path_factory) -> FinishedRun:
    run_dir = tmp_path_factory.mktemp("uninterrupted") / "run"
    return FinishedRun(run_dir, run_mc_train(run_dir, STEPS, *EXACT))
