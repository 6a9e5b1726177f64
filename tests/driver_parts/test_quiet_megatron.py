"""megatron_mc.quiet: the imports and config a train actor goes through print Megatron-Core's fallback
notices without it and none with it, while other warnings from the same modules still print."""
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# What a train rank imports and builds, in a fresh process (import-time warnings fire once per process).
PROBE = textwrap.dedent("""
    import sys, warnings
    if sys.argv[1] == "quiet":
        from megatron_mc.quiet import silence_megatron_notices
        silence_megatron_notices()
    import megatron.core.distributed, megatron.core.optimizer
    from megatron.core.models.gpt.gpt_layer_specs import get_gpt_layer_local_spec
    from megatron.core.transformer import TransformerConfig
    get_gpt_layer_local_spec()
    TransformerConfig(num_layers=1, hidden_size=8, num_attention_heads=1, use_cpu_initialization=True)
    warnings.warn_explicit("an unrelated notice", UserWarning, "backends.py", 1, module="megatron.core.models.backends")
""")
NOTICES = ("Transformer Engine and Apex are not installed", "Apex is not installed", "full scope is deprecated")


def test_megatron_notices_are_silenced_and_nothing_else():
    runs = {mode: subprocess.Popen([sys.executable, "-c", PROBE, mode], cwd=REPO, stderr=subprocess.PIPE, text=True)
            for mode in ("loud", "quiet")}
    err = {mode: run.communicate(timeout=120)[1] for mode, run in runs.items()}
    assert all(run.returncode == 0 for run in runs.values()), err
    assert all(notice in err["loud"] for notice in NOTICES), err["loud"]  # the probe does reach every notice
    assert "Warning" in err["quiet"] and "an unrelated notice" in err["quiet"]
    others = [line for line in err["quiet"].splitlines() if "Warning" in line and "an unrelated notice" not in line]
    assert not others, err["quiet"]
