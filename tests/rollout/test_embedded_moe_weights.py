"""The embedded engine takes weights in the checkpoint's names (one tensor per expert, as SGLang loads
them and our exporter writes them) although transformers 5 keeps a MoE layer's experts in fused 3-D
parameters: each per-expert tensor lands in its slice (gate rows, then up rows), nothing else moves."""
import torch

from rollout.embedded_engine import EmbeddedEngine
from tests.model.model_tiny import make_hf_model


def test_per_expert_checkpoint_tensors_fill_the_fused_expert_parameters(tmp_path):
    make_hf_model("qwen3_moe", str(tmp_path))
    engine = EmbeddedEngine(str(tmp_path), dtype="float32", device="cpu")
    params = dict(engine.model.named_parameters())
    fused_gate_up = params["model.layers.1.mlp.experts.gate_up_proj"]
    experts, double_inter, hidden = fused_gate_up.shape
    inter = double_inter // 2
    before = {name: p.detach().clone() for name, p in params.items()}
    gate, up, down = torch.randn(inter, hidden), torch.randn(inter, hidden), torch.randn(hidden, inter)
    prefix = "model.layers.1.mlp.experts.2"
    count = engine.load_named_tensors([(f"{prefix}.gate_proj.weight", gate), (f"{prefix}.up_proj.weight", up),
                                       (f"{prefix}.down_proj.weight", down)])
    assert count == 3
    assert torch.equal(fused_gate_up[2, :inter], gate) and torch.equal(fused_gate_up[2, inter:], up)
    assert torch.equal(params["model.layers.1.mlp.experts.down_proj"][2], down)
    for name, p in params.items():  # every other expert and layer is untouched
        changed = ~torch.isclose(p.detach(), before[name])
        if name == "model.layers.1.mlp.experts.gate_up_proj":
            changed[2] = False
        elif name == "model.layers.1.mlp.experts.down_proj":
            changed[2] = False
        assert not changed.any(), name


def test_an_expert_beyond_the_layer_is_refused_by_name(tmp_path):
    make_hf_model("qwen3_moe", str(tmp_path))
    engine = EmbeddedEngine(str(tmp_path), dtype="float32", device="cpu")
    try:
        engine.load_named_tensors([("model.layers.0.mlp.experts.99.down_proj.weight", torch.zeros(1))])
    except KeyError as e:
        assert "experts.99.down_proj" in str(e)
    else:
        raise AssertionError("an expert the model does not have was accepted")
