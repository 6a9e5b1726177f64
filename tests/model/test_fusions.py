"""Fused kernels: on where the kernel exists, off with one logged reason where it does not, and what is
chosen passes Megatron-Core's own TransformerConfig validation."""
import importlib.util
import logging

import pytest
import torch
import torch.nn.functional as F

from megatron_mc.models import fusions


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU machine's choices")
def test_cpu_turns_every_fusion_off_with_its_reason():
    decisions = fusions.choose_fusions(F.silu, True)
    assert all(reason for reason in decisions.values())
    assert "Transformer Engine" in decisions["apply_rope_fusion"]
    assert "CUDA" in decisions["bias_activation_fusion"] and "CUDA" in decisions["bias_dropout_fusion"]
    assert "CUDA" in decisions["gradient_accumulation_fusion"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU machine's log line")
def test_one_log_line_names_what_is_off_and_why(caplog):
    fusions._logged.clear()
    with caplog.at_level(logging.INFO, logger=fusions.__name__):
        kwargs = fusions.fusion_kwargs(F.silu, True)
        fusions.fusion_kwargs(F.silu, True)
    assert kwargs == dict.fromkeys(fusions.FUSIONS, False)
    assert len(caplog.records) == 1
    line = caplog.records[0].getMessage()
    assert all(f"{name} (" in line for name in fusions.FUSIONS)
    assert "does not import here" in line


@pytest.fixture
def kernels_present(monkeypatch):
    """A CUDA machine with Triton, Transformer Engine's fused RoPE and apex's wgrad extension, as far as
    the choice can see (the kernels themselves are not called)."""
    from megatron.core.models.common.embeddings import rope_utils

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(rope_utils, "fused_apply_rotary_pos_emb", lambda *a, **k: None)
    monkeypatch.setattr(rope_utils, "fused_apply_rotary_pos_emb_thd", lambda *a, **k: None)
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name in ("triton", "fused_weight_gradient_mlp_cuda")
                        else find_spec(name, *a))


def test_fusions_turn_on_where_their_kernels_exist_and_megatron_accepts_them(kernels_present):
    from megatron.core.transformer.transformer_config import TransformerConfig

    kwargs = fusions.fusion_kwargs(F.silu, True)
    assert kwargs == {**dict.fromkeys(fusions.FUSIONS, True), "masked_softmax_fusion": False}
    config = TransformerConfig(num_layers=1, hidden_size=64, num_attention_heads=4, gated_linear_unit=True,
                               activation_func=F.silu, add_bias_linear=False, use_cpu_initialization=True, **kwargs)
    assert config.bias_activation_fusion and config.apply_rope_fusion and config.gradient_accumulation_fusion


def test_non_swiglu_keeps_unfused_activation(kernels_present):
    decisions = fusions.choose_fusions(F.gelu, False)
    assert decisions["apply_rope_fusion"] is None
    assert "SwiGLU" in decisions["bias_activation_fusion"]
    assert decisions["bias_dropout_fusion"] is None
