"""Routing replay's routes beside the model's input (no model needed): each routed token's experts sit at
that token's position through packing, padding and a context-parallel split; positions no engine routed
get experts 0..topk-1; a sequence without routes, or with routes of another model shape, is refused by name."""
from __future__ import annotations

import pytest
import torch

from megatron_mc.trainer.batch import TrainBatch
from megatron_mc.trainer.microbatches import make_micro_batch, padding_micro_batch
from megatron_mc.trainer.routing_replay import RouteShape
from rollout.routed_experts import encode

SHAPE = RouteShape(layers=3, topk=2, experts=256)
PROMPTS = [[10, 11, 12], [20, 21, 22, 23, 24], [30, 31]]
RESPONSES = [[13, 14], [25], [32, 33, 34, 35]]


def token_routes(tokens: list[int], shape: RouteShape = SHAPE) -> str:
    """Routes that name their token: expert `token` then `token + 1`, in every layer."""
    ids = torch.tensor([[t, t + 1] for t in tokens], dtype=torch.int32)
    return encode(ids[:, None, :].expand(-1, shape.layers, -1).numpy())


def batch(routes=None) -> TrainBatch:
    routes = routes or [token_routes((p + r)[:-1]) for p, r in zip(PROMPTS, RESPONSES)]
    return TrainBatch(PROMPTS, RESPONSES, [1.0] * 3, rollout_logprobs=None, temperature=1.0, routed_experts=routes)


@pytest.mark.parametrize("packed,cp", [(True, 1), (False, 1), (True, 2), (False, 2)])
def test_each_token_carries_its_own_routes(packed, cp):
    mb = make_micro_batch(batch(), packed=packed, segment_multiple=2 * cp if cp > 1 else 1, row_multiple=4,
                          route_shape=SHAPE)
    routed = 0
    for rank in range(cp):
        part = mb.context_part(cp, rank)
        assert part.routes.shape == part.tokens.shape + (SHAPE.layers, SHAPE.topk)
        tokens, routes = part.tokens.reshape(-1), part.routes.reshape(-1, SHAPE.layers, SHAPE.topk)
        names_its_token = ((routes[:, :, 0] == tokens[:, None]).all(-1) & (routes[:, :, 1] == tokens[:, None] + 1).all(-1)
                           & (tokens > 0))  # padding (token 0) would name itself with experts 0, 1
        unrouted = (routes == torch.arange(SHAPE.topk, dtype=torch.int32)).all(-1).all(-1)
        assert (names_its_token | unrouted).all()
        routed += int(names_its_token.sum())
    assert routed == sum(len(p) + len(r) - 1 for p, r in zip(PROMPTS, RESPONSES))  # all but each last token
    padding = padding_micro_batch(4, route_shape=SHAPE)
    assert padding.routes.shape == (1, 4, SHAPE.layers, SHAPE.topk)


def test_a_sequence_without_routes_is_refused_naming_the_remedy():
    routes = [token_routes((p + r)[:-1]) for p, r in zip(PROMPTS, RESPONSES)]
    routes[1] = None
    with pytest.raises(ValueError, match="sequence 1 of the train batch has no routed experts.*"
                                         "--enable-return-routed-experts"):
        make_micro_batch(batch(routes), route_shape=SHAPE)


def test_routes_of_another_model_shape_are_refused():
    with pytest.raises(ValueError, match="4 MoE layers x top-2"):
        make_micro_batch(batch(), route_shape=RouteShape(layers=4, topk=2, experts=256))
    with pytest.raises(ValueError, match="the model has 16 experts per layer"):
        make_micro_batch(batch(), route_shape=RouteShape(layers=3, topk=2, experts=16))
