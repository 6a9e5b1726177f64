"""The rehearsal's tiny model: the config's family, sized for its layout, with its RoPE scaling baked into
the HF config so that the engines (which read config.json) and the trainer (which also applies
model.rope_scaling) use the same positions. The tokenizer is the tiny default's."""
from __future__ import annotations

from pathlib import Path

import torch

from megatron_mc.config import RunConfig
from megatron_mc.data.tiny_default import prepare_tiny_default
from megatron_mc.rehearsal.layout import model_family, tiny_model_overrides


def build_tiny_model(cfg: RunConfig, out_dir: Path, seed: int = 0) -> Path:
    """An HF checkpoint of the config's family, small enough for CPU, splittable by its layout."""
    import transformers as tf
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(prepare_tiny_default().hf_dir)
    rope = {"rope_type": "default", "rope_theta": 1_000_000.0}
    if cfg.model.rope_scaling:
        rope = {**cfg.model.rope_scaling, "rope_theta": 1_000_000.0}
    fields = dict(vocab_size=len(tokenizer), rms_norm_eps=1e-6, rope_parameters=rope, dtype="float32",
                  max_position_embeddings=cfg.model.max_position_embeddings or 40960,
                  tie_word_embeddings=False, eos_token_id=tokenizer.eos_token_id,
                  pad_token_id=tokenizer.pad_token_id, bos_token_id=None, **tiny_model_overrides(cfg))
    family = model_family(cfg)
    config = tf.Qwen3MoeConfig(**fields) if family == "qwen3_moe" else tf.Qwen3Config(**fields)
    torch.manual_seed(seed)
    model = tf.AutoModelForCausalLM.from_config(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
