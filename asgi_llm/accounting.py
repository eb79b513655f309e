"""What a request is charged: its usage, kind by kind, and the one price of it.

ProviderApp sets `ctx.usage` and `ctx.cost_usd` with these when an attempt ends; the
rate-limit layer settles token windows and budgets on the same figures, and the metrics
layer exports them: one record means one thing whatever the provider.

The delivered rule, for a stream that ended before its upstream said the whole usage (cut,
timed out, failed, or left by its client): input is what the stream said at its start
(Anthropic's `message_start`, when it is not 0), else the proxy's prompt estimate; output is
one token per content event relayed to the client. So a cut stream is never charged 0 (its
input stands) nor its reservation (its `max_tokens` was not produced).
"""

from __future__ import annotations

from asgi_llm.config.prices import prices_for
from asgi_llm.config.schema import Cost, Deployment
from asgi_llm.context import LLMContext, Usage

MTOK = 1_000_000


def usage_cost(usage: Usage | None, cost: Cost) -> float | None:
    """USD for a usage at a deployment's prices (None when there is no usage)."""
    if usage is None:
        return None
    total = 0.0
    for (_, tokens), price in zip(usage.kinds(), cost.per_kind(), strict=True):
        if tokens and price:
            total += tokens * price
    return total / MTOK


def deployment_cost(usage: Usage | None, deployment: Deployment) -> float | None:
    """USD for a usage at a deployment's prices: its `cost:`, else the packaged table's."""
    return usage_cost(usage, prices_for(deployment))


def delivered_usage(ctx: LLMContext) -> Usage:
    """The usage of an answer that began and ended before its usage was said (see above)."""
    start = ctx.stream_start_usage
    if start is not None and start.prompt_tokens > 0:
        return Usage(
            start.prompt_tokens,
            ctx.streamed_chunks,
            start.cached_prompt_tokens,
            0,
            start.cache_write_tokens,
            start.cache_write_1h_tokens,
        )
    return Usage(ctx.prompt_tokens_estimate, ctx.streamed_chunks)


def charged_usage(ctx: LLMContext) -> Usage | None:
    """What the request is charged: nothing for a cache hit or a request that never got an
    answer, the attempt's usage, or the delivered rule for an answer that said none."""
    if ctx.cache_status == "hit":
        return None
    if ctx.usage is not None:
        return ctx.usage
    # An answer began: a 2xx went out (an error status is the proxy's own refusal or failure,
    # sent after every attempt failed: no answer), content was relayed, or the client left
    # while the upstream worked on it.
    began = ctx.response_started and ctx.status is not None and ctx.status < 400
    if began or ctx.disconnected or ctx.streamed_chunks:
        return delivered_usage(ctx)
    return None


def request_cost(ctx: LLMContext) -> float:
    """What the request cost: ProviderApp's figure, else the charged usage priced."""
    if ctx.cache_status == "hit":
        return 0.0
    if ctx.cost_usd is not None:
        return ctx.cost_usd
    deployment = ctx.deployment
    if deployment is None:
        return 0.0
    return deployment_cost(charged_usage(ctx), deployment) or 0.0


__all__ = ["MTOK", "charged_usage", "delivered_usage", "deployment_cost", "request_cost", "usage_cost"]
