"""How the policy is sharded: tensor, sequence, pipeline (with virtual stages), context, expert and data
parallel sizes and the distributed optimizer, as one plain, validated dataclass."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


def sequence_length_multiple(cp: int, tp: int, sequence_parallel: bool) -> int:
    """What a padded sequence length must be a multiple of: context parallelism cuts it into 2 * cp zig-zag
    chunks, and sequence parallelism each rank's positions over the TP ranks."""
    return (2 * cp if cp > 1 else 1) * (tp if sequence_parallel else 1)


@dataclass
class ParallelConfig:
    tp: int = 1
    pp: int = 1
    vpp: Optional[int] = None  # model chunks per pipeline rank (interleaved schedule); None = 1
    cp: int = 1
    ep: int = 1
    etp: Optional[int] = None  # expert tensor parallel size; None = same as tp
    sequence_parallel: bool = False
    distributed_optimizer: bool = False
    overlap_grad_reduce: bool = False
    overlap_param_gather: bool = False
    seed: int = 1234

    def __post_init__(self):
        for name in ("tp", "pp", "cp", "ep"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.vpp is not None and self.vpp < 1:
            raise ValueError(f"vpp must be >= 1 or null, got {self.vpp}")
        if self.vpp is not None and self.vpp > 1 and self.pp == 1:
            raise ValueError(f"vpp={self.vpp} needs pp > 1 (virtual stages interleave pipeline ranks)")
        if self.etp is not None and self.etp < 1:
            raise ValueError(f"etp must be >= 1 or null, got {self.etp}")
        if self.sequence_parallel and self.tp == 1:
            raise ValueError("sequence_parallel needs tp > 1; set tp or turn sequence_parallel off")
        if self.overlap_param_gather and not self.distributed_optimizer:
            raise ValueError("overlap_param_gather needs distributed_optimizer: true")

    @property
    def expert_tp(self) -> int:
        return self.etp if self.etp is not None else self.tp

    @property
    def virtual_stages(self) -> int:
        return self.vpp or 1

    def megatron_sizes(self) -> dict:
        """The sizes under the names both Megatron-Core's initialize_model_parallel and its
        TransformerConfig take."""
        return {"tensor_model_parallel_size": self.tp, "pipeline_model_parallel_size": self.pp,
                "virtual_pipeline_model_parallel_size": self.vpp if self.virtual_stages > 1 else None,
                "context_parallel_size": self.cp, "expert_model_parallel_size": self.ep,
                "expert_tensor_parallel_size": self.expert_tp}

    def dp(self, world_size: int) -> int:
        """Data-parallel size for `world_size` ranks; raises if the sizes do not tile the world."""
        dense = self.tp * self.pp * self.cp
        if world_size % dense:
            raise ValueError(
                f"world size {world_size} is not divisible by tp*pp*cp = {self.tp}*{self.pp}*{self.cp}"
            )
        expert = self.expert_tp * self.ep * self.pp
        if world_size % expert:
            raise ValueError(
                f"world size {world_size} is not divisible by etp*ep*pp = {self.expert_tp}*{self.ep}*{self.pp}"
            )
        return world_size // dense

    def check_model(self, num_layers: int, num_heads: int, num_kv_heads: int, num_experts: int) -> None:
        """Raise ValueError naming the field when this sharding cannot split the given model."""
        if num_heads % self.tp:
            raise ValueError(f"tp={self.tp} must divide num_attention_heads={num_heads}")
        if num_kv_heads % self.tp:
            raise ValueError(
                f"tp={self.tp} must divide num_key_value_heads={num_kv_heads} (Megatron-Core shards "
                "whole query groups)"
            )
        stages = self.pp * self.virtual_stages
        if num_layers % stages:
            raise ValueError(f"pp*vpp={stages} must divide num_hidden_layers={num_layers}")
        if self.ep > 1 and num_experts == 0:
            raise ValueError(f"ep={self.ep} needs a mixture-of-experts model; this one is dense")
        if num_experts and self.tp > 1 and not self.sequence_parallel:
            raise ValueError(
                f"tp={self.tp} with a mixture-of-experts model needs sequence_parallel: true "
                "(Megatron-Core refuses to train MoE layers under TP without it)"
            )
        if num_experts and num_experts % self.ep:
            raise ValueError(f"ep={self.ep} must divide num_experts={num_experts}")
