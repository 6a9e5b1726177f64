"""What the trainer tests measure, run once per layout on a Ray cluster of 2 CPUs: each scenario starts a
TrainGroup on the tiny default's checkpoint, does its steps and returns plain results."""
from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import torch

from megatron_mc.config import config_from_dict
from megatron_mc.trainer.batch import TrainBatch
from megatron_mc.trainer.group import TrainGroup

TEMPERATURE = 0.7
GREEDY_TOKENS = 8


def run_config(lr: float = 2e-4, kl_coef: float = 0.0, **parallel):
    world = parallel.pop("world", 1)
    return config_from_dict({
        "model": {"dtype": "float32", "transformer_impl": "local", "make_vocab_size_divisible_by": 64},
        "parallel": parallel,
        "cluster": {"gpus_per_node": world},
        # 4 sequences, 2 optimizer steps of 2; a budget that splits every mini-batch into micro-batches
        "train": {"train_batch_size": 2, "mini_batch_size": 1, "n_samples_per_prompt": 2, "lr": lr,
                  "micro_batch_tokens": 24, "max_steps": 10},
        "algo": {"preset": "microcoder_grpo", "loss_agg_mode": "token-mean", "kl_coef": kl_coef},
    })


def rl_batch(seed: int = 0) -> TrainBatch:
    gen = torch.Generator().manual_seed(seed)
    prompts = [torch.randint(5, 1000, (n,), generator=gen).tolist() for n in (5, 9, 3, 7)]
    responses = [torch.randint(5, 1000, (n,), generator=gen).tolist() for n in (6, 4, 8, 5)]
    return TrainBatch(prompts, responses, advantages=[1.0, -1.0, 1.0, -1.0], rollout_logprobs=None,
                      temperature=TEMPERATURE)


def hf_logprobs(hf_dir: Path, batch: TrainBatch) -> list[list[float]]:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
    out = []
    for prompt, response in zip(batch.prompt_ids, batch.response_ids):
        with torch.no_grad():
            logits = model(torch.tensor([prompt + response])).logits[0, len(prompt) - 1:-1]
        log_p = torch.log_softmax(logits / batch.temperature, -1)
        out.append(log_p.gather(-1, torch.tensor(response)[:, None])[:, 0].tolist())
    return out


def hf_greedy(hf_dir: Path, prompt: list[int]) -> list[int]:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
    out = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                         do_sample=False, max_new_tokens=GREEDY_TOKENS, pad_token_id=0, eos_token_id=None)
    return out[0, len(prompt):].tolist()


def engine_greedy(url: str, prompt: list[int]) -> tuple[list[int], str]:
    body = {"input_ids": prompt, "sampling_params": {"temperature": 0, "max_new_tokens": GREEDY_TOKENS,
                                                     "ignore_eos": True}}
    request = urllib.request.Request(f"{url}/generate", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        answer = json.loads(response.read())
    return answer["output_ids"], answer["meta_info"]["weight_version"]


def layout_scenario(hf_dir: Path, out: Path, placement_group=None, **parallel) -> dict:
    """Log-probs before training, one RL step's metrics and the exported weights after it."""
    group = TrainGroup(run_config(**parallel), str(hf_dir), placement_group=placement_group)
    try:
        batch = rl_batch()
        logprobs = group.compute_logprobs(batch)
        metrics = group.train(batch)
        group.export_hf(str(out))
        return {"logprobs": logprobs, "metrics": metrics, "export": out}
    finally:
        group.shutdown()


def single_rank_scenario(hf_dir: Path, out: Path, start_engine) -> dict:
    """On one rank: the layout scenario's measurements, then the RL step's effect on the batch, a
    checkpoint round trip, SFT and weight sync (at a higher learning rate, so greedy outputs change)."""
    result = {}
    group = TrainGroup(run_config(), str(hf_dir))
    try:
        batch = rl_batch()
        before = group.compute_logprobs(batch)
        first = group.train(batch)
        group.export_hf(str(out / "after_rl_step"))
        result["layout"] = {"logprobs": before, "metrics": first, "export": out / "after_rl_step"}
        result["logprobs"] = {"before": before, "after": group.compute_logprobs(batch)}
        # the same batch against the same old policy again: the updated policy scores a lower loss
        batch.old_logprobs = before
        result["loss"] = {"first": first["loss"], "again": group.train(batch)["loss"]}

        group.save_checkpoint(str(out / "ckpt"))
        continued = group.train(rl_batch(seed=1))
        group.load_checkpoint(str(out / "ckpt"))
        resumed = group.train(rl_batch(seed=1))
        result["resume"] = {"continued": continued, "resumed": resumed}

        url = start_engine(hf_dir)
        prompt = rl_batch().prompt_ids[0]
        result["greedy_before"] = engine_greedy(url, prompt)
        target = [7, 8, 9, 10, 11, 12, 13, 14]
        sft = TrainBatch.for_sft([prompt] * 4, [target] * 4)
        result["sft_losses"] = [group.train_sft(sft)["loss"] for _ in range(6)]
        group.update_engine_weights("disk", [url], 1, directory=str(out / "sync"), reference_model_dir=str(hf_dir))
        group.export_hf(str(out / "after_sft"))
        result["greedy_disk"] = engine_greedy(url, prompt)
        result["greedy_hf_after_sft"] = hf_greedy(out / "after_sft", prompt)
        group.train_sft(sft)
        group.update_engine_weights("tensor", [url], 2, engine="embedded")
        group.export_hf(str(out / "after_more_sft"))
        result["greedy_tensor"] = engine_greedy(url, prompt)
        result["greedy_hf_after_more_sft"] = hf_greedy(out / "after_more_sft", prompt)
        # several small buckets through a gloo group formed once, used twice
        for version in (3, 4):
            group.train_sft(sft)
            group.update_engine_weights("distributed", [url], version, backend="gloo", bucket_bytes=4096)
        group.export_hf(str(out / "after_distributed"))
        result["greedy_distributed"] = engine_greedy(url, prompt)
        result["greedy_hf_after_distributed"] = hf_greedy(out / "after_distributed", prompt)
        result["greedy_hf_start"] = hf_greedy(hf_dir, prompt)
        result["target"] = target
        return result
    finally:
        group.shutdown()


def reference_scenario(hf_dir: Path, out: Path) -> dict:
    """With the KL term on, two data-parallel ranks and the distributed optimizer: reference log-probs
    before and after training steps and after a checkpoint reload, and the policy's own log-probs around
    each reference computation."""
    group = TrainGroup(run_config(lr=1e-3, kl_coef=0.1, world=2, distributed_optimizer=True), str(hf_dir))
    try:
        batch = rl_batch()
        result = {"start": group.compute_logprobs(batch), "ref_at_start": group.compute_ref_logprobs(batch)}
        result["first_step"] = group.train(batch)  # computes old and reference log-probs itself
        result["policy_before_ref"] = group.compute_logprobs(batch)
        result["ref_after_step"] = group.compute_ref_logprobs(batch)
        result["policy_after_ref"] = group.compute_logprobs(batch)
        result["second_step"] = group.train(rl_batch())
        group.save_checkpoint(str(out / "ckpt"))
        continued = group.train(rl_batch(seed=1))
        group.load_checkpoint(str(out / "ckpt"))
        result["ref_after_reload"] = group.compute_ref_logprobs(batch)
        result["resume"] = {"continued": continued, "resumed": group.train(rl_batch(seed=1))}
        return result
    finally:
        group.shutdown()


def _resumed_step(cfg, hf_dir: Path, checkpoint: Path) -> dict:
    group = TrainGroup(cfg, str(hf_dir))
    try:
        group.load_checkpoint(str(checkpoint))
        return group.train(rl_batch(seed=1))
    finally:
        group.shutdown()


def _saved_and_continued(cfg, hf_dir: Path, checkpoint: Path) -> dict:
    group = TrainGroup(cfg, str(hf_dir))
    try:
        group.train(rl_batch())
        group.save_checkpoint(str(checkpoint))
        return group.train(rl_batch(seed=1))
    finally:
        group.shutdown()


def fresh_resume_scenario(hf_dir: Path, out: Path) -> dict:
    """The distributed optimizer's checkpoint loaded by new TrainGroups (as `--resume` does after a crash):
    the next step of the saving group against the step of a new group of the same layout, and of one
    rank (the data_parallel format reshards across DP sizes)."""
    continued = _saved_and_continued(run_config(world=2, distributed_optimizer=True), hf_dir, out / "ckpt")
    return {"continued": continued,
            "resumed": _resumed_step(run_config(world=2, distributed_optimizer=True), hf_dir, out / "ckpt"),
            "resumed_on_one_rank": _resumed_step(run_config(distributed_optimizer=True), hf_dir, out / "ckpt")}


def full_reshard_scenario(hf_dir: Path, out: Path) -> dict:
    """The `full` optimizer format saved under TP=2 and resumed under two data-parallel ranks."""
    def config(**parallel):
        cfg = run_config(world=2, distributed_optimizer=True, **parallel)
        cfg.checkpoint.optimizer_resharding = "full"
        return cfg

    continued = _saved_and_continued(config(tp=2), hf_dir, out / "ckpt")
    return {"continued": continued, "resumed": _resumed_step(config(), hf_dir, out / "ckpt")}
