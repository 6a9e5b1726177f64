"""Routed experts: which experts the engine's router chose for every token, layer by layer, so the trainer
can replay the same routes (routing replay, R3; without it MoE RL drifts and collapses, Megatron-LM#4168).

The form on the wire and in a Sample is SGLang's (GenerateReqInput.return_routed_experts, answered in
meta_info["routed_experts"]): base64 of an int32 array [tokens, layers, topk] covering positions
[0, prompt + response - 1), every token the engine fed through the model (the last sampled token never is).
"""
from __future__ import annotations

import base64

import numpy as np


def routed_tokens(prompt_len: int, response_len: int) -> int:
    """How many tokens the engine routed: all but the last of prompt + response."""
    return max(0, prompt_len + response_len - 1)


def encode(expert_ids) -> str:
    """[tokens, layers, topk] expert ids as SGLang sends them."""
    return base64.b64encode(np.ascontiguousarray(expert_ids, dtype=np.int32).tobytes()).decode("ascii")


def encoded_ints(text: str) -> int:
    """How many int32 an encoded string holds, without decoding it."""
    padding = len(text) - len(text.rstrip("="))
    return (len(text) // 4 * 3 - padding) // 4


def decode(text: str, tokens: int, layers: int, topk: int, where: str) -> np.ndarray:
    """[tokens, layers, topk] int32; `where` names the sample in errors."""
    ids = np.frombuffer(base64.b64decode(text), dtype=np.int32)
    if ids.size != tokens * layers * topk:
        raise ValueError(f"{where}: routed_experts holds {ids.size} expert ids, but {tokens} routed tokens x "
                         f"{layers} MoE layers x top-{topk} need {tokens * layers * topk}; the engine serves a "
                         "model with another number of layers or experts per token than the trainer's")
    return ids.reshape(tokens, layers, topk)
