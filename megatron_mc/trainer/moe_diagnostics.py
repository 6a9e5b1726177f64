"""Per-step MoE diagnostics: expert load, router entropy, auxiliary loss and dropped tokens, per layer.

While a train step records, each Megatron-Core router's `routing` is wrapped on the instance: it sees the
router logits and the final routing map of every micro-batch and adds into one device tensor (a row per
layer: tokens per expert, summed routing probabilities, entropy, tokens, calls, dropped assignments), so
nothing reaches the host during the step. `read()` is one all-reduce over every train rank and one device
read: pipeline stages hold disjoint layers, and data-, context- and (sequence-parallel, which Megatron-Core
requires for MoE training under TP) tensor-parallel ranks route disjoint tokens, so the sum over all ranks
gives every expert's global count.

Only passes with gradients count: a full-recompute forward runs first without them and again with them
in the backward, so each micro-batch counts once (the rule Megatron-Core's own aux-loss tracker follows).
Counts include the padding positions of padded rows and padding micro-batches: experts compute on them too.

Routing agreement: when the samples carry the engine's routes, the old-log-prob forward (`comparing()`, at
the weights that generated the samples in synchronous training) compares, per routed (token, layer), the
experts the trainer's router used with the engine's: the same top-k set or not, and how many of the k it
shares. Positions no engine routed (a sequence's last token, padding) are left out. Under routing replay the
router uses the engine's experts, so the agreement is 1 unless the routes were laid out wrong. The counts
join the step's one all-reduce in `read()`.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from functools import partial
from typing import Iterator

import torch
import torch.distributed as dist

from megatron_mc.trainer.routing_replay import NOT_ROUTED, RouteShape, in_router_order

# Megatron-Core's tracker names of the load-balancing losses (the z-loss is reported beside them)
BALANCING_LOSSES = ("load_balancing_loss", "seq_load_balancing_loss", "global_load_balancing_loss")
AGREEMENT_COLUMNS = 3  # per layer: engine-routed pairs compared, same top-k set, shared experts / k


def find_routers(chunks: list[torch.nn.Module]) -> list[torch.nn.Module]:
    """This rank's Megatron-Core top-k routers (none in a dense model)."""
    from megatron.core.transformer.moe.router import TopKRouter

    return [m for chunk in chunks for m in chunk.modules() if isinstance(m, TopKRouter)]


class MoEDiagnostics:
    """`with diagnostics.recording(): <the step's forwards and backwards>`, then `diagnostics.read()` on
    every rank (collective). Without routers (dense model, or switched off) both do nothing."""

    def __init__(self, routers: list[torch.nn.Module]):
        self.routers = routers
        if routers:
            config = routers[0].config
            self.num_layers = config.num_layers + (config.mtp_num_layers or 0)
            self.num_experts = config.num_moe_experts
            self.topk = config.moe_router_topk
            self.capacity = config.moe_expert_capacity_factor is not None
            self.route_shape = RouteShape(config.num_layers, self.topk, self.num_experts)
            self._route_slice = _sequence_parallel_slice(config)
            # per layer: routed (token, layer) pairs compared, those with the engine's top-k set, shared experts / k
            self._agreement = torch.zeros(self.num_layers, AGREEMENT_COLUMNS, dtype=torch.float64,
                                          device=self.routers[0].weight.device)
        self._stats: torch.Tensor | None = None
        self._comparing = False
        self._expected: torch.Tensor | None = None

    @contextmanager
    def recording(self) -> Iterator[None]:
        if not self.routers:
            yield
            return
        from megatron.core.transformer.moe.moe_utils import get_moe_layer_wise_logging_tracker

        # Megatron-Core's tracker (a process-global dict its routers fill lazily) keeps only this step's
        # losses: not what forwards outside a recording, or another model in this process, left there
        get_moe_layer_wise_logging_tracker().clear()
        columns = 2 * self.num_experts + 4
        if self._stats is None:
            self._stats = torch.zeros(self.num_layers, columns, dtype=torch.float64,
                                      device=self.routers[0].weight.device)
        self._stats.zero_()
        for router in self.routers:
            router.routing = partial(self._routing, router, type(router).routing.__get__(router))
        try:
            yield
        finally:
            for router in self.routers:
                del router.routing

    @contextmanager
    def comparing(self) -> Iterator[None]:
        """Around a forward whose micro-batches carry the engine's routes (`expect` before each): counts
        how often the trainer's routers agree with them, from zero, for the next read()."""
        if not self.routers:
            yield
            return
        self._agreement.zero_()
        for router in self.routers:
            router.routing = partial(self._compare, router, type(router).routing.__get__(router))
        self._comparing = True
        try:
            yield
        finally:
            self._comparing, self._expected = False, None
            for router in self.routers:
                del router.routing

    def expect(self, routes: torch.Tensor | None) -> None:
        """The engine's routes [rows, width, layers, topk] of the micro-batch part about to run forward
        (None: nothing to compare, e.g. a padding micro-batch); kept only while comparing."""
        if self._comparing:
            self._expected = None if routes is None else in_router_order(routes, *self._route_slice)

    def _compare(self, router, routing, logits: torch.Tensor, padding_mask=None):
        probs, routing_map = routing(logits, padding_mask=padding_mask)
        layer = router.layer_number - 1
        if self._expected is not None and layer < self._expected.shape[1]:  # MTP layers have no engine routes
            with torch.no_grad():
                self._agreement[layer] += agreement_counts(routing_map, self._expected[:, layer], self.topk)
        return probs, routing_map

    def _routing(self, router, routing, logits: torch.Tensor, padding_mask=None):
        probs, routing_map = routing(logits, padding_mask=padding_mask)
        if torch.is_grad_enabled():  # once per micro-batch under full recompute too (module docstring)
            with torch.no_grad():
                self._add(router, logits, probs, routing_map)
        return probs, routing_map

    def _add(self, router, logits: torch.Tensor, probs: torch.Tensor, routing_map: torch.Tensor) -> None:
        logits = logits.reshape(-1, self.num_experts).float()
        tokens = logits.shape[0]
        if router.score_function == "sigmoid":
            scores = torch.sigmoid(logits)
            p = scores / scores.sum(-1, keepdim=True).clamp(min=1e-20)
            log_p = torch.log(p.clamp(min=1e-30))
        else:
            log_p = torch.log_softmax(logits, -1)
            p = log_p.exp()
        # with a capacity, padded-to-capacity slots are in the map with zero weight: not assignments
        kept = routing_map & (probs != 0) if self.capacity else routing_map
        counts = kept.sum(0, dtype=torch.float64)
        entropy = -(p * log_p).sum(dtype=torch.float64)
        total = counts.sum()
        scalars = torch.stack([entropy, total.new_full((), tokens), total.new_full((), 1.0),
                               tokens * self.topk - total])
        self._stats[router.layer_number - 1] += torch.cat([counts, p.sum(0, dtype=torch.float64), scalars])

    def read(self) -> dict:
        """Collective: the step's metrics (see step_metrics), the same on every rank; {} without routers."""
        if not self.routers:
            return {}
        from megatron.core.transformer.moe.moe_utils import get_moe_layer_wise_logging_tracker

        tracker = get_moe_layer_wise_logging_tracker()
        names = sorted(tracker)  # the same on every rank: every layer is an MoE layer
        tracked = [tracker[n]["values"].to(self._stats) for n in names]
        summed = torch.cat([self._stats, self._agreement] + ([torch.stack(tracked, 1)] if tracked else []), 1)
        self._agreement.zero_()  # a step without an old-log-prob forward reports no agreement
        dist.all_reduce(summed)
        summed = summed.cpu()
        group_sizes = [1 if tracker[n].get("reduce_group") is None else tracker[n]["reduce_group"].size()
                       for n in names]
        return step_metrics(summed, self.num_experts, self.topk, names, group_sizes)


def _sequence_parallel_slice(config) -> tuple[int, int]:
    """(this rank's slice, slices) of a micro-batch's positions its routers see: the TP rank's under
    sequence parallelism, all of them otherwise."""
    if not config.sequence_parallel:
        return 0, 1
    from megatron.core import parallel_state as ps

    return ps.get_tensor_model_parallel_rank(), ps.get_tensor_model_parallel_world_size()


def agreement_counts(routing_map: torch.Tensor, expected: torch.Tensor, topk: int) -> torch.Tensor:
    """[routed, same top-k set, shared experts / topk] over the positions the engine routed, from the
    trainer's routing map [tokens, E] and the engine's experts [tokens, topk] (NOT_ROUTED where it routed none)."""
    if routing_map.shape[0] != expected.shape[0]:
        raise RuntimeError(f"routing agreement: the router saw {routing_map.shape[0]} tokens but the micro-batch "
                           f"carries engine routes for {expected.shape[0]}; the routes are laid out in another "
                           "token order than the router's (trainer/routing_replay.py)")
    routed = expected[:, 0] != NOT_ROUTED
    shared = routing_map.gather(1, expected.long().clamp(min=0)).sum(1)
    # with a capacity factor the trainer may keep fewer than k: the same set needs all k and nothing else
    same = (shared == topk) & (routing_map.sum(1) == topk)
    counts = torch.stack([routed.sum(), (same & routed).sum(), (shared * routed).sum()]).double()
    counts[2] /= topk  # in place by a number: no host tensor copied to the device per router call
    return counts


def step_metrics(summed: torch.Tensor, num_experts: int, topk: int, tracked_names: list[str] = (),
                 group_sizes: list[int] = ()) -> dict:
    """The step's metrics from the rank-summed accumulators ([layers, 2E + 4 + AGREEMENT_COLUMNS + tracked]),
    for the layers that routed tokens:

    - moe/layer{i}/load_max_over_mean: the busiest expert's tokens over the mean (1 balanced, E / topk when
      every token goes to the same experts); moe/load_max_over_mean the mean over layers and
      moe/load_max_over_mean_worst the largest;
    - moe/layer{i}/router_entropy, moe/router_entropy: mean entropy (nats) of a token's routing
      distribution over all experts (log E uniform, 0 certain);
    - moe/layer{i}/dropped_token_fraction, moe/dropped_token_fraction: token-expert assignments dropped
      by the capacity factor (0 without one);
    - moe/layer{i}/aux_loss, moe/aux_loss: the load-balancing loss without its coefficient, as Megatron-Core's
      tracker holds it (mean over micro-batches) when the router applies one, else the same Switch formula
      E / (topk T^2) * sum_e P_e c_e over the step's totals; other tracked losses (z_loss) as moe/{name};
    - moe/tokens: tokens routed per layer; moe/expert_tokens: [layer][expert] token counts (for heatmaps);
    - when the old-log-prob forward compared routes (see the module docstring): moe/layer{i}/routing_agreement,
      moe/routing_agreement: the fraction of the engine's routed (token, layer) pairs whose top-k set the
      trainer's router chose too; moe/routing_overlap: the mean of |trainer's experts & engine's| / k.
    """
    E = num_experts
    counts, prob_sums = summed[:, :E], summed[:, E:2 * E]
    entropy, tokens, calls, dropped = (summed[:, 2 * E + k] for k in range(4))
    compared, same, shared = (summed[:, 2 * E + 4 + k] for k in range(AGREEMENT_COLUMNS))
    tracked = {name: summed[:, 2 * E + 4 + AGREEMENT_COLUMNS + k] for k, name in enumerate(tracked_names)}
    layers = [i for i in range(summed.shape[0]) if tokens[i] > 0]
    if not layers:
        return {}
    out: dict = {}
    ratios, aux = [], []
    for i in layers:
        c = counts[i]
        ratio = float(c.max() / c.mean()) if c.sum() > 0 else math.nan
        ratios.append(ratio)
        per_layer = {"load_max_over_mean": ratio, "router_entropy": float(entropy[i] / tokens[i]),
                     "dropped_token_fraction": float(dropped[i] / (tokens[i] * topk))}
        # calls summed over ranks / ranks summing each value = the micro-batches each value averages over
        for name, size in zip(tracked_names, group_sizes):
            per_layer[name] = float(tracked[name][i] * size / calls[i])
        balancing = [per_layer[n] for n in BALANCING_LOSSES if n in per_layer]
        per_layer["aux_loss"] = (sum(balancing) if balancing else
                                 float(E / (topk * tokens[i] ** 2) * (prob_sums[i] * c).sum()))
        aux.append(per_layer["aux_loss"])
        out.update({f"moe/layer{i}/{k}": v for k, v in per_layer.items() if k not in BALANCING_LOSSES})
    finite = [r for r in ratios if math.isfinite(r)]
    out["moe/load_max_over_mean"] = sum(finite) / len(finite) if finite else math.nan
    out["moe/load_max_over_mean_worst"] = max(finite) if finite else math.nan
    total_tokens = float(tokens[layers].sum())
    out["moe/router_entropy"] = float(entropy[layers].sum()) / total_tokens
    out["moe/dropped_token_fraction"] = float(dropped[layers].sum()) / (total_tokens * topk)
    out["moe/aux_loss"] = sum(aux) / len(aux)
    for name in tracked_names:
        if name not in BALANCING_LOSSES:
            out[f"moe/{name}"] = sum(out[f"moe/layer{i}/{name}"] for i in layers) / len(layers)
    compared_layers = [i for i in range(summed.shape[0]) if compared[i] > 0]
    if compared_layers:
        out.update({f"moe/layer{i}/routing_agreement": float(same[i] / compared[i]) for i in compared_layers})
        out["moe/routing_agreement"] = float(same.sum() / compared.sum())
        out["moe/routing_overlap"] = float(shared.sum() / compared.sum())
    out["moe/tokens"] = float(tokens[layers[0]])
    out["moe/expert_tokens"] = [[int(v) for v in counts[i].tolist()] for i in layers]
    return out


def merge_moe_metrics(per_rank: list[dict]) -> dict:
    """The step's MoE metrics out of the ranks' train results (all-reduced already: rank 0's)."""
    return dict(per_rank[0].get("moe", {})) if per_rank else {}
