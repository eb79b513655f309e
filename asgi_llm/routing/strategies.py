"""Strategies order the candidates; the first is tried first, the rest are the failover order."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from asgi_llm.config.prices import prices_for
from asgi_llm.config.schema import Deployment
from asgi_llm.context import LLMContext
from asgi_llm.routing.filters import requested_output_tokens
from asgi_llm.routing.latency import LatencyTracker

Strategy = Callable[[Sequence[Deployment], LLMContext, "RoutingState"], list[Deployment]]


class RoutingState:
    """What strategies may look at: the latency tracker, the RNG and the config's options."""

    def __init__(
        self, latency: LatencyTracker, rng: random.Random, explore: float, default_output: int
    ) -> None:
        self.latency = latency
        self.rng = rng
        self.explore = explore
        self.default_output = default_output


def ordered(candidates: Sequence[Deployment], ctx: LLMContext, state: RoutingState) -> list[Deployment]:
    return list(candidates)


def weighted(candidates: Sequence[Deployment], ctx: LLMContext, state: RoutingState) -> list[Deployment]:
    # Weighted random order without replacement (Efraimidis-Spirakis keys).
    rng = state.rng
    return sorted(candidates, key=lambda d: -(rng.random() ** (1.0 / d.weight)))


def expected_cost(deployment: Deployment, ctx: LLMContext, default_output: int) -> float:
    output = requested_output_tokens(ctx, default_output)
    cost = prices_for(deployment)
    return (ctx.prompt_tokens_estimate * cost.input_per_mtok + output * cost.output_per_mtok) / 1_000_000


def cheapest(candidates: Sequence[Deployment], ctx: LLMContext, state: RoutingState) -> list[Deployment]:
    # sorted() is stable: ties keep the configured order
    return sorted(candidates, key=lambda d: expected_cost(d, ctx, state.default_output))


def fastest(candidates: Sequence[Deployment], ctx: LLMContext, state: RoutingState) -> list[Deployment]:
    """Power of two choices over the decayed latency score, then the rest by score."""
    scores = state.latency.scores([d.id for d in candidates])
    ranked = sorted(candidates, key=lambda d: scores[d.id])
    if len(ranked) < 2:
        return ranked
    rng = state.rng
    if rng.random() < state.explore:
        first = rng.choice(ranked)
    else:
        a, b = rng.sample(ranked, 2)
        first = a if scores[a.id] <= scores[b.id] else b
    return [first, *(d for d in ranked if d is not first)]


STRATEGIES: dict[str, Strategy] = {
    "ordered": ordered,
    "weighted": weighted,
    "cost": cheapest,
    "latency": fastest,
}
