"""A GPU config turned into its rehearsal: the same placement mode, parallel layout, weight-sync transport
and router, on a tiny model of the config's family, with data parallelism shrunk as far as the layout
allows and nothing else shrunk.

What changes, and why:
- model: a tiny random model of the family (dense Qwen3 or Qwen3-MoE) sized so the layout divides it
  (heads and KV heads by tp, layers by pp x vpp, experts by ep), with the config's RoPE scaling; the
  tiny default's tokenizer and tasks stand in for the config's data.
- parallel: unchanged, except that Transformer Engine cannot run here (local layers; said in the report).
- cluster: the config's GPUs per node; as few nodes as the shrunk data-parallel size needs (whole nodes).
- rollout: the embedded engine in strict SGLang-contract mode instead of SGLang, short responses; the
  weight-sync transport and router stay (distributed goes over gloo instead of NCCL).
- sizes of the batch, the micro-batches, the steps and the judge pool: small, so a rehearsal takes minutes.
"""
from __future__ import annotations

import copy
import math
from pathlib import Path

from megatron_mc.config import RunConfig, config_from_dict
from megatron_mc.planning.model_shape import KNOWN_HF_CONFIGS, load_model_shape
from megatron_mc.typed_config import to_dict

STEPS = 3  # two steps, a checkpoint, the driver killed, one more step after --resume auto
PROMPTS_PER_STEP = 2
SAMPLES_PER_PROMPT = 8
RESPONSE_TOKENS = 24
# About two of the tiny tasks' sequences (prompts of 23-35 tokens, responses up to 24), so that whether two
# fit depends on their lengths and each data-parallel rank packs a data-dependent number of micro-batches,
# as long-tailed code-RL batches do on a cluster (ranks that disagree on the count deadlock expert-parallel
# all-to-alls).
MICRO_BATCH_TOKENS = 106
# A decoding step takes this long at least, so a request the driver gave up on is still running when the
# next phase starts (as a 32k-token response would be), and a lost abort shows.
SECONDS_PER_TOKEN = 0.05


def model_family(cfg: RunConfig) -> str:
    """qwen3 or qwen3_moe, from the checkpoint's config.json or a known model name (/models/Qwen3-32B)."""
    shape = load_model_shape(cfg.model.hf_dir)
    known = KNOWN_HF_CONFIGS.get(Path(cfg.model.hf_dir).name, {})
    if shape.num_experts or known.get("model_type") == "qwen3_moe":
        return "qwen3_moe"
    return "qwen3"


def rehearsal_world_size(cfg: RunConfig) -> int:
    """The fewest train ranks the layout tiles (tp*pp*cp and etp*ep*pp both divide it), filling whole nodes
    and, colocated, every engine GPU; never more than the config's own."""
    par, cluster = cfg.parallel, cfg.cluster
    unit = math.lcm(par.tp * par.pp * par.cp, par.expert_tp * par.ep * par.pp, cluster.gpus_per_node)
    engine_gpus = cfg.rollout.num_engines * cfg.rollout.tp_size
    world = unit
    while cluster.mode == "colocate" and world < engine_gpus:
        world += unit
    return min(world, cluster.train_gpus)


def tiny_model_overrides(cfg: RunConfig) -> dict:
    """HF config fields of a tiny model the layout can split."""
    par = cfg.parallel
    kv_heads = max(2, par.tp)
    fields = {"num_attention_heads": 2 * kv_heads, "num_key_value_heads": kv_heads, "head_dim": 16,
              "hidden_size": 64, "intermediate_size": 128,
              "num_hidden_layers": 2 * par.pp * par.virtual_stages}
    if model_family(cfg) == "qwen3_moe":
        fields.update(num_experts=max(4, par.ep), num_experts_per_tok=2, moe_intermediate_size=32,
                      norm_topk_prob=True)
    return fields


def rehearsal_num_nodes(cfg: RunConfig) -> int:
    """Whole nodes for the shrunk train ranks, and (disaggregated) the engines' own nodes."""
    per_node = cfg.cluster.gpus_per_node
    train_nodes = max(1, rehearsal_world_size(cfg) // per_node)
    if cfg.cluster.mode != "disaggregate":
        return train_nodes
    if cfg.cluster.engine_gpus % per_node:
        raise ValueError(f"cluster.engine_gpus={cfg.cluster.engine_gpus} does not fill whole nodes of "
                         f"{per_node} GPUs; the rehearsal keeps engines on whole nodes")
    return train_nodes + cfg.cluster.engine_gpus // per_node


def rehearsal_config(cfg: RunConfig, run_dir: Path, hf_dir: Path, eval_file: Path, ray_address: str) -> RunConfig:
    """The config the rehearsal's mc-train runs (see the module docstring for what changes)."""
    data = copy.deepcopy(to_dict(cfg))
    world = rehearsal_world_size(cfg)
    data["cluster"].update(num_nodes=rehearsal_num_nodes(cfg), ray_address=ray_address)
    data["run_dir"] = str(run_dir)
    data["model"].update(hf_dir=str(hf_dir), transformer_impl="local", dtype="float32")
    data["model"]["fp8"]["enabled"] = False
    data["data"].update(source="tiny_tasks", train_problems="", max_prompt_tokens=128)
    data["rollout"].update(engine="embedded", embedded_strict=True, embedded_seconds_per_token=SECONDS_PER_TOKEN,
                           max_new_tokens=RESPONSE_TOKENS,
                           dtype="float32", weight_sync_dir=str(run_dir / "weights"), system_prompt="",
                           instruction="", temperature_probe_problems=2, engine_startup_timeout_s=300.0)
    data["rollout"].pop("context_length", None)  # SGLang's; the embedded engine has no such limit
    dp = world // (cfg.parallel.tp * cfg.parallel.pp * cfg.parallel.cp)
    mini = dp // math.gcd(dp, SAMPLES_PER_PROMPT)  # prompts whose samples split evenly over the DP ranks
    data["train"].update(train_batch_size=max(PROMPTS_PER_STEP, 2 * mini), mini_batch_size=mini,
                         n_samples_per_prompt=SAMPLES_PER_PROMPT, max_steps=STEPS, warmup_steps=0,
                         micro_batch_tokens=MICRO_BATCH_TOKENS)
    data["eval"].update(problems_file=str(eval_file), format=None, interval=0, n_samples=2, k=[1],
                        date_from=None, date_to=None)
    data["checkpoint"].update(interval=2, keep_last=3, hf_export_interval=0, dir=None)
    data["judge"].update(num_workers=2, time_limit_scale=4.0)
    data["logging"].update(tensorboard=False, progress="plain", wandb_project=None)
    data["rollout"].pop("group_size", None)  # follows train.n_samples_per_prompt
    data["rollout"].pop("placement", None)  # follows cluster.mode
    data["rollout"].pop("judge_workers", None)  # follows judge.num_workers
    return config_from_dict(data, where="rehearsal")
