"""Routing replay (R3): the trainer's MoE layers route every token to the experts the rollout engine chose
for it, in the old log-prob forward and in training, so the policy ratio compares the same expert paths
(without it small router differences between engine and trainer compound and MoE RL collapses,
Megatron-LM#4168).

Megatron-Core 0.16's routers take the choice from their RouterReplay (moe_enable_routing_replay): set
per layer with set_target_indices before each micro-batch's forward, in the order the router sees the
tokens: this context-parallel rank's zig-zag part, sequence-major ([sequence, batch] flattened, as the
decoder's activations lie), and under sequence parallelism only this tensor-parallel rank's slice of the
sequence; each pipeline stage sets its own layers (`layer_number` is global). Expert parallelism splits
the experts, not the router's input, so it changes nothing here.

A recomputed forward (model.recompute) routes a second time inside the backward, after later
micro-batches' forwards: there it takes RouterReplay's REPLAY_BACKWARD, its queue of the targets in
forward order, which is the backward order of the micro-batches of one model chunk. Supervised steps
(train_sft) have no engine routes: their micro-batches set no targets and the routers route themselves.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from rollout.routed_experts import decode, routed_tokens


@dataclass(frozen=True)
class RouteShape:
    layers: int
    topk: int
    experts: int


# where the engine routed no token, in routes also compared with the trainer's (moe_diagnostics.py)
NOT_ROUTED = -1


def unrouted(total: int, shape: RouteShape) -> torch.Tensor:
    """[total, layers, topk] experts 0..topk-1 for positions no engine routed (a sequence's last token,
    padding): they change no log-prob, since nothing after them in their segment is scored."""
    return torch.arange(shape.topk, dtype=torch.int32).expand(total, shape.layers, shape.topk).clone()


def replay_routes(routed_experts, prompt_ids, response_ids, starts: list[int], total: int, shape: RouteShape,
                  indices: list[int], mark_unrouted: bool = False) -> torch.Tensor:
    """[total, layers, topk] int32 expert ids for the flattened input: sequence i's routed tokens from
    starts[i] on; elsewhere `unrouted`, or NOT_ROUTED with mark_unrouted (to compare routes: set_targets
    replays those as `unrouted`)."""
    routes = (torch.full((total, shape.layers, shape.topk), NOT_ROUTED, dtype=torch.int32) if mark_unrouted
              else unrouted(total, shape))
    for i, (prompt, response) in enumerate(zip(prompt_ids, response_ids)):
        encoded = None if routed_experts is None else routed_experts[i]
        where = f"sequence {indices[i]} of the train batch"
        if encoded is None:
            raise ValueError(f"{where} has no routed experts, but algo.routing_replay is on: the engine must "
                             "return them (SGLang launched with --enable-return-routed-experts, requests with "
                             "return_routed_experts; the client's return_routed_experts=True)")
        n = routed_tokens(len(prompt), len(response))
        ids = torch.from_numpy(decode(encoded, n, shape.layers, shape.topk, where).copy())
        if n and (int(ids.min()) < 0 or int(ids.max()) >= shape.experts):
            raise ValueError(f"{where}: routed experts range over [{int(ids.min())}, {int(ids.max())}] but the "
                             f"model has {shape.experts} experts per layer")
        routes[starts[i]: starts[i] + n] = ids
    return routes


class RoutingReplay:
    """Sets the recorded routes on this rank's Megatron-Core routers, micro-batch by micro-batch."""

    def __init__(self, chunks: list[torch.nn.Module]):
        from megatron.core import parallel_state as ps
        from megatron.core.transformer.moe.router import TopKRouter

        self.routers = {id(chunk): [m for m in chunk.modules() if isinstance(m, TopKRouter)] for chunk in chunks}
        routers = [r for chunk_routers in self.routers.values() for r in chunk_routers]
        if not routers:
            raise ValueError("algo.routing_replay: true needs a mixture-of-experts model; this one has no routers "
                             "(set algo.routing_replay: false for a dense model)")
        config = routers[0].config
        if not config.moe_enable_routing_replay or config.moe_router_fusion:
            raise ValueError("routing replay needs Megatron-Core's moe_enable_routing_replay and the unfused "
                             "router (moe_router_fusion computes top-k without it); build the model with "
                             "build_model(..., routing_replay=True)")
        self.shape = RouteShape(config.num_layers, config.moe_router_topk, config.num_moe_experts)
        self.tp_rank = ps.get_tensor_model_parallel_rank() if config.sequence_parallel else 0
        self.tp_size = ps.get_tensor_model_parallel_world_size() if config.sequence_parallel else 1
        for router in routers:
            router.register_forward_pre_hook(_choose_action)

    def clear(self) -> None:
        for routers in self.routers.values():
            for router in routers:
                router.router_replay.clear_indices()

    def set_targets(self, chunk: torch.nn.Module, routes: torch.Tensor) -> None:
        """`routes`: [rows, width, layers, topk] of the micro-batch part this rank runs, on its device."""
        local = in_router_order(routes, self.tp_rank, self.tp_size)
        local = torch.where(local == NOT_ROUTED, torch.arange(self.shape.topk, dtype=local.dtype, device=local.device),
                            local)
        for router in self.routers[id(chunk)]:
            router.router_replay.set_target_indices(local[:, router.layer_number - 1].long())


def in_router_order(routes: torch.Tensor, tp_rank: int, tp_size: int) -> torch.Tensor:
    """[tokens, layers, topk]: a micro-batch part's routes [rows, width, layers, topk] in the order its
    router sees the tokens (sequence-major, this tensor-parallel rank's slice under sequence parallelism;
    tp_size 1 without it)."""
    by_position = routes.transpose(0, 1)
    share = by_position.shape[0] // tp_size
    return by_position[tp_rank * share: (tp_rank + 1) * share].reshape(-1, *routes.shape[2:])


def _choose_action(router: torch.nn.Module, args) -> None:
    """Replay when targets were set (rollout data); route by the router's own scores otherwise (SFT)."""
    from megatron.core.transformer.moe.router_replay import RouterReplayAction

    replay = router.router_replay
    # inside the autograd engine: a recomputation during the backward
    if torch._C._current_graph_task_id() != -1:
        action = RouterReplayAction.REPLAY_BACKWARD if replay.replay_backward_list else None
    else:
        action = RouterReplayAction.REPLAY_FORWARD if replay.target_topk_idx is not None else None
    replay.set_router_replay_action(action)
