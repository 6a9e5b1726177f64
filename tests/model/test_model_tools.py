"""The conversion tools end to end: HF -> Megatron dist checkpoint under TP=2 (two ranks started by the
tool) -> HF is bit-identical with config and tokenizer files copied, and a config that describes another
architecture is refused naming the differing key."""
import json
import shutil
import subprocess
import sys

import pytest

from model_tiny import make_hf_model
from model_workers import REPO, _bit_mismatches

pytestmark = [pytest.mark.distributed, pytest.mark.slow]


def _tool(name, *args):
    return subprocess.run([sys.executable, str(REPO / "tools" / name), *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=300,
                          env={"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin",
                               "PYTHONPATH": str(REPO)})


def test_hf_to_mcore_tp2_and_back_is_bit_identical(tmp_path):
    hf = tmp_path / "hf"
    make_hf_model("qwen2", str(hf))
    (hf / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 64}))
    done = _tool("convert_hf_to_mcore.py", "--hf-dir", hf, "--out", tmp_path / "mcore", "--tp", 2)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    done = _tool("convert_mcore_to_hf.py", "--mcore-dir", tmp_path / "mcore", "--hf-config-dir", hf,
                 "--out", tmp_path / "back")
    assert done.returncode == 0, done.stderr[-3000:]
    assert _bit_mismatches(hf, tmp_path / "back") == []
    assert (tmp_path / "back" / "model.safetensors.index.json").is_file()
    for name in ("config.json", "tokenizer_config.json"):
        assert (tmp_path / "back" / name).read_text() == (hf / name).read_text()

    other = tmp_path / "other"
    shutil.copytree(hf, other)
    config = json.loads((other / "config.json").read_text())
    config["num_hidden_layers"] = 2
    (other / "config.json").write_text(json.dumps(config))
    done = _tool("convert_mcore_to_hf.py", "--mcore-dir", tmp_path / "mcore", "--hf-config-dir", other,
                 "--out", tmp_path / "wrong")
    assert done.returncode != 0
    assert "num_hidden_layers" in done.stderr
