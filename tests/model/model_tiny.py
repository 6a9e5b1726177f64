"""Tiny random HF models of every family, saved with save_pretrained, and HF reference log-probs."""
from __future__ import annotations

import torch

FAMILIES = ("qwen2", "qwen3", "llama", "qwen3_moe")
VOCAB = 250  # not a multiple of 128: exercises vocabulary padding


def hf_config(family: str, **overrides):
    import transformers as tf

    common = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=4,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                  rms_norm_eps=1e-6)
    common.update(overrides)
    if family == "qwen2":
        return tf.Qwen2Config(tie_word_embeddings=True, **common)
    if family == "qwen3":
        return tf.Qwen3Config(head_dim=24, **common)
    if family == "llama":
        return tf.LlamaConfig(**common)
    if family == "qwen3_moe":
        return tf.Qwen3MoeConfig(head_dim=16, moe_intermediate_size=32, num_experts=4,
                                 num_experts_per_tok=2, norm_topk_prob=True, **common)
    raise ValueError(family)


def make_hf_model(family: str, out_dir: str, dtype=torch.float32, seed: int = 0, **overrides):
    """Random weights (biases and norms randomized too, so a mis-mapped tensor shows), saved to out_dir."""
    import transformers as tf

    torch.manual_seed(seed)
    config = hf_config(family, **overrides)
    model = tf.AutoModelForCausalLM.from_config(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p) if "norm" in name else 0.1 * torch.randn_like(p))
    model = model.to(dtype).eval()
    model.save_pretrained(out_dir)
    return model


def hf_log_probs(model, tokens: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        logits = model(tokens).logits.float()
    return torch.log_softmax(logits[:, :-1], -1).gather(-1, tokens[:, 1:, None])[..., 0]


def sample_tokens(batch: int, seq: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, seq), generator=torch.Generator().manual_seed(seed))
