"""Routing replay through the real trainer (TrainWorker on two gloo ranks) with the embedded engine's
samples of the tiny MoE: which experts Megatron-Core's routers used, token by token, against the ones the
engine recorded; log-probs under replay against the engine's; a recomputing pipeline's RL step against
the same step without recomputation; and, without replay, the MoE diagnostics' routing agreement against
the one counted here from the recorded experts and the trainer's own top-k. Run by test_routing_replay.py through model_workers.launch.

    python routing_replay_workers.py routing OUT_DIR   (with RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set)
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "model")]

PROMPTS = ([5, 17, 33, 2, 90], [12, 8, 61, 7, 7, 3, 44, 9, 21], [40, 41, 42], [100, 3, 77, 15])
NEW_TOKENS = 6
TEMPERATURE = 0.7
# (name, parallel layout, packed, micro_batch_tokens): one micro-batch holds every sequence, so the routes
# each router used can be laid back onto the sequences; the experts are split over both ranks (ep 2)
ROUTE_CASES = (("tp2_sp_ep2_packed", dict(tp=2, sequence_parallel=True, ep=2, etp=1), True, 256),
               ("cp2_ep2_padded_perturbed", dict(cp=2, ep=2), False, 256))


def engine_samples(hf_dir: str):
    """What the embedded engine generates (sampled, at TEMPERATURE), with its log-probs and routes."""
    from rollout.embedded_engine import EmbeddedEngine, GenerationRequest
    from rollout.routed_experts import encode
    from rollout.sample import Sample

    engine = EmbeddedEngine(hf_dir, dtype="float32", device="cpu")
    requests = [GenerationRequest(rid=str(i), input_ids=list(p), max_new_tokens=NEW_TOKENS, temperature=TEMPERATURE,
                                  ignore_eos=True, seed=i, return_routed_experts=True) for i, p in enumerate(PROMPTS)]
    return [Sample("p", i, list(p), r.output_ids, r.logprobs, "length", TEMPERATURE, 0,
                   routed_experts=encode(r.routed_experts.numpy()))
            for i, (p, r) in enumerate(zip(PROMPTS, engine.generate(requests)))]


class RouteCapture:
    """Per router call: the layer, the experts it used ([tokens, experts] bool) and the ones its own
    logits would have chosen, in the router's token order."""

    def __init__(self, model, with_phase: bool = False):
        from megatron.core.transformer.moe.router import TopKRouter

        self.with_phase = with_phase
        self.calls = []
        self.hooks = [m.register_forward_hook(self._record) for chunk in model for m in chunk.modules()
                      if isinstance(m, TopKRouter)]

    def _record(self, router, inputs, output):
        with torch.no_grad():
            own = torch.topk(router.gating(inputs[0]).view(-1, router.config.num_moe_experts), router.topk).indices
        call = (router.layer_number, output[1].detach().cpu(), own.cpu())
        # inside the autograd engine: a recomputation during the backward
        self.calls.append(call + (torch._C._current_graph_task_id() != -1,) if self.with_phase else call)

    def close(self):
        for hook in self.hooks:
            hook.remove()


def gathered(part: torch.Tensor, group) -> list[torch.Tensor]:
    parts = [torch.empty_like(part) for _ in range(torch.distributed.get_world_size(group))]
    torch.distributed.all_gather(parts, part.contiguous(), group=group)
    return parts


def by_sequence(name: str, used: torch.Tensor, lengths: list[int]) -> list[torch.Tensor]:
    """This rank's router-order rows of the one micro-batch, as each sequence's token rows."""
    from megatron.core import parallel_state as ps

    from megatron_mc.algo.context_parallel import zigzag_indices

    if name.startswith("tp2"):  # sequence parallel: the TP ranks hold consecutive slices of the packed row
        flat = torch.cat(gathered(used, ps.get_tensor_model_parallel_group()))
        starts = [sum(lengths[:i]) for i in range(len(lengths))]
        return [flat[s: s + n] for s, n in zip(starts, lengths)]
    rows = len(lengths)  # padded rows under cp=2: sequence-major [width / 2, rows], zig-zag chunks per rank
    parts = gathered(used, ps.get_context_parallel_group())
    width = 2 * parts[0].shape[0] // rows
    whole = torch.zeros((width, rows) + used.shape[1:], dtype=used.dtype)
    for rank, part in enumerate(parts):
        whole[zigzag_indices(width, 2, rank)] = part.view(width // 2, rows, *used.shape[1:])
    return [whole[:n, i] for i, n in enumerate(lengths)]


def route_case(name, layout, packed, budget, hf_dir, samples):
    from scenarios import run_config

    from megatron_mc.trainer.batch import TrainBatch
    from megatron_mc.trainer.worker import TrainWorker
    from rollout.routed_experts import decode

    cfg = run_config(world=2, **layout)
    cfg.algo.routing_replay, cfg.train.pack_sequences, cfg.train.micro_batch_tokens = True, packed, budget
    worker = TrainWorker(cfg, hf_dir)
    if name.endswith("perturbed"):  # the trainer's routers now prefer other experts; replay must not follow them
        perturb_routers(worker)
    capture = RouteCapture(worker.model)
    batch = TrainBatch.from_samples(samples, [1.0] * len(samples), TEMPERATURE)
    logprobs = worker.compute_logprobs(batch)
    capture.close()
    lengths = [len(s.prompt_ids) + len(s.response_ids) - 1 for s in samples]  # the tokens the engine routed
    recorded = [torch.from_numpy(decode(s.routed_experts, n, 4, 2, "test").copy()).long() for s, n in zip(samples, lengths)]
    layers = sorted({layer for layer, _, _ in capture.calls})
    mismatched = own_differs = tokens = 0
    for layer, used_map, own in capture.calls:
        used = [m.nonzero()[:, 1].view(-1, 2) for m in by_sequence(name, used_map, [n + 1 for n in lengths])]
        mine = by_sequence(name, own, [n + 1 for n in lengths])
        for i, n in enumerate(lengths):
            expected = recorded[i][:, layer - 1].sort(-1).values
            mismatched += int((used[i][:n].sort(-1).values != expected).any(-1).sum())
            own_differs += int((mine[i][:n].sort(-1).values != expected).any(-1).sum())
            tokens += n
    return {f"{name}/logprobs/r{os.environ['RANK']}": {str(i): row for i, row in logprobs.items()},
            f"{name}/routes/r{os.environ['RANK']}": {"layers": layers, "tokens": tokens, "mismatched": mismatched,
                                                      "own_differs": own_differs}}


def perturb_routers(worker) -> None:
    with torch.no_grad():
        for chunk in worker.model:
            for pname, p in chunk.named_parameters():
                if pname.endswith("router.weight"):
                    p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1)) * 2.0)


def agreement_case(hf_dir, samples) -> dict:
    """Replay off, the trainer's routers perturbed: the routing agreement the MoE diagnostics report for the
    old-log-prob forward (read with the RL step's metrics), and the same counted here per layer from the
    recorded experts and each router's own top-k of that forward: [pairs, same set, shared experts]."""
    from scenarios import run_config

    from megatron_mc.trainer.batch import TrainBatch
    from megatron_mc.trainer.worker import TrainWorker
    from rollout.routed_experts import decode

    started = time.perf_counter()
    name = "cp2_ep2_padded_no_replay"
    cfg = run_config(world=2, cp=2, ep=2)
    cfg.train.pack_sequences, cfg.train.micro_batch_tokens = False, 256
    worker = TrainWorker(cfg, hf_dir)
    perturb_routers(worker)
    batch = TrainBatch.from_samples(samples, [1.0, -0.5, 0.8, -1.2], TEMPERATURE)
    capture = RouteCapture(worker.model)
    worker.compute_logprobs(batch)
    capture.close()
    batch.old_logprobs = [s.rollout_logprobs for s in samples]
    moe = worker.train(batch)["moe"]
    lengths = [len(s.prompt_ids) + len(s.response_ids) - 1 for s in samples]
    recorded = [torch.from_numpy(decode(s.routed_experts, n, 4, 2, "test").copy()).long() for s, n in zip(samples, lengths)]
    counted = {}
    for layer, _, own in capture.calls:
        mine = by_sequence(name, own, [n + 1 for n in lengths])
        for i, n in enumerate(lengths):
            shared = (mine[i][:n, :, None] == recorded[i][:, layer - 1, None, :]).any(-1).sum(-1)
            pairs, same, overlap = counted.setdefault(str(layer - 1), [0, 0, 0])
            counted[str(layer - 1)] = [pairs + n, same + int((shared == 2).sum()), overlap + int(shared.sum())]
    return {f"agreement/r{os.environ['RANK']}": {
        "moe": {k: v for k, v in moe.items() if "routing" in k}, "counted": counted,
        "seconds": time.perf_counter() - started}}


def recompute_case(hf_dir, samples) -> dict:
    """pp=2, every layer recomputed in the backward, one sequence per micro-batch: stage 0 runs micro-batch
    2's forward before micro-batch 1's backward, whose recomputation must route as micro-batch 1's forward
    did. Returns the log-probs and, per layer, whether each recomputation used its forward's experts."""
    from scenarios import run_config

    from megatron_mc.trainer.batch import TrainBatch
    from megatron_mc.trainer.worker import TrainWorker

    cfg = run_config(world=2, lr=1e-3, pp=2)
    cfg.algo.routing_replay, cfg.train.pack_sequences, cfg.train.micro_batch_tokens = True, True, 16
    cfg.model.recompute = "full"
    worker = TrainWorker(cfg, hf_dir)
    batch = TrainBatch.from_samples(samples, [1.0, -0.5, 0.8, -1.2], TEMPERATURE)
    logprobs = worker.compute_logprobs(batch)
    batch.old_logprobs = [s.rollout_logprobs for s in samples]
    capture = RouteCapture(worker.model, with_phase=True)
    trained = worker.train(batch)
    capture.close()
    supervised = worker.train_sft(TrainBatch.for_sft(PROMPTS, [s.response_ids for s in samples]))
    forwards, recomputed = {}, {}
    for layer, used, _, in_backward in capture.calls:
        (recomputed if in_backward else forwards).setdefault(layer, []).append(used)
    same = {str(layer): len(recomputed.get(layer, [])) == len(maps) > 1
            and all(torch.equal(a, b) for a, b in zip(maps, recomputed[layer])) for layer, maps in forwards.items()}
    rank = os.environ["RANK"]
    return {f"pp2_recompute/logprobs/r{rank}": {str(i): row for i, row in logprobs.items()},
            f"pp2_recompute/same_routes/r{rank}": same, f"pp2_recompute/train/r{rank}": trained,
            f"pp2_recompute/sft/r{rank}": supervised}


def scenario_routing(out: Path) -> dict:
    from model_tiny import make_hf_model

    from megatron_mc.parallel import state

    hf_dir = str(out / f"moe-r{os.environ['RANK']}")
    make_hf_model("qwen3_moe", hf_dir)
    samples = engine_samples(hf_dir)
    result = {"samples": [s.to_dict() for s in samples]}
    for name, layout, packed, budget in ROUTE_CASES:
        try:
            result.update(route_case(name, layout, packed, budget, hf_dir, samples))
        finally:
            state.destroy(keep_process_group=True)
    try:
        result.update(agreement_case(hf_dir, samples))
    finally:
        state.destroy(keep_process_group=True)
    result.update(recompute_case(hf_dir, samples))
    return result


if __name__ == "__main__":
    out_dir = Path(sys.argv[2])
    measured = {"routing": scenario_routing}[sys.argv[1]](out_dir)
    (out_dir / f"result-{os.environ.get('RANK', '0')}.json").write_text(json.dumps(measured))
