"""The CPU layer imports Megatron-Core without compiling: its torch.compile'd fused kernels are off on CPU
(models/fusions.py), and importing Dynamo and Inductor for them cost every rank about 1.3 s of its start."""
import subprocess
import sys

PROBE = """
import sys, torch
compile_before = torch.compile
from megatron_mc import platform
platform.activate()
from megatron.core import jit
from megatron.core.fusions import fused_bias_swiglu
print("dynamo imported:", "torch._dynamo" in sys.modules)
print("compile restored:", torch.compile is compile_before)
print("fused kernel is plain:", type(fused_bias_swiglu.swiglu).__name__ == "function")
x = torch.randn(3, 4)
print("same values:", torch.equal(fused_bias_swiglu.swiglu(x), torch.nn.functional.silu(x[:, :2]) * x[:, 2:]))
"""


def test_megatron_is_imported_without_dynamo_and_torch_compile_is_put_back():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.splitlines() == ["dynamo imported: False", "compile restored: True",
                                       "fused kernel is plain: True", "same values: True"], out.stdout
