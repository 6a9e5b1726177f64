"""`python -m megatron_mc.eval.cli` runs main(): it prints its usage and refuses bad arguments with exit 2."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "megatron_mc.eval.cli", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


def test_module_prints_its_usage():
    done = _run("--help")
    assert done.returncode == 0
    assert "--problems" in done.stdout and "--model" in done.stdout


def test_module_refuses_n_below_the_largest_k():
    done = _run("--model", "m", "--problems", "p", "--n", "2", "--k", "1,4")
    assert done.returncode == 2
    assert "--n 2 is smaller than the largest k (4)" in done.stderr
