"""Megatron-Core's notices that say nothing to a user of this project, silenced by message, category and
module: every other warning, Megatron's included, still shows.

Without Transformer Engine and Apex (this CPU machine; some GPU images) Megatron-Core warns on import
that it falls back to torch norms, optimizers and multi-tensor kernels: the fallbacks this project
chooses there. Its TransformerConfig also warns that its own default cuda_graph_scope ("full") is
deprecated, and torch that the collective its sequence gathers use is. Call `silence_megatron_notices()`
in a process before it imports Megatron-Core.
"""
from __future__ import annotations

import warnings

# (message regex, matched from the start; category; module regex, matched from the start)
MEGATRON_NOTICES = (
    (r"(Transformer Engine and )?Apex (is|are) not installed\. Falling back to", UserWarning, r"megatron\.core\."),
    (r"full scope is deprecated\. Use empty cuda_graph_scope", UserWarning,
     r"megatron\.core\.transformer\.transformer_config$"),
    # Megatron-Core's sequence gathers (sequence and context parallelism) call the older torch collective
    (r"`torch\.distributed\.all_gather_into_tensor` is deprecated", FutureWarning, r"torch\.distributed\."),
)


def silence_megatron_notices() -> None:
    for message, category, module in MEGATRON_NOTICES:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
