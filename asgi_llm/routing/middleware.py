"""RouterMiddleware: resolves the model, picks deployments, drives the attempts.

Sits just outside ProviderApp; each attempt is one call of the inner app with
`ctx.deployment` set. Failover happens only while no response byte has been sent.
"""

from __future__ import annotations

import asyncio
import random

from asgi_llm.context import LLMContext
from asgi_llm.errors import ModelNotFound, UpstreamError, UpstreamStatus, UpstreamTimeout
from asgi_llm.exchange import LLMLayer
from asgi_llm.types import Receive, Scope, Send

BACKOFF_BASE_S = 0.025
BACKOFF_MAX_S = 0.25


def final_error(errors: list[UpstreamError]) -> UpstreamError:
    """What the client hears when every attempt failed."""
    last = errors[-1]
    if all(isinstance(e, UpstreamTimeout) for e in errors):
        return last
    if isinstance(last, UpstreamStatus) and last.status == 429:
        return last  # passed on with its retry-after
    error = UpstreamError(
        f"All {len(errors)} upstream attempts failed (last: {last.message})",
        deployment=last.deployment,
        code=last.code if last.status == 502 else "upstream_unavailable",
    )
    return error


class RouterMiddleware(LLMLayer):
    async def handle(self, ctx: LLMContext, scope: Scope, receive: Receive, send: Send) -> None:
        if ctx.endpoint == "models":
            await self.app(scope, receive, send)
            return
        entry = ctx.entry or ctx.config.catalog.resolve(ctx.model or "")
        if entry is None:
            raise ModelNotFound(ctx.model or "")
        ctx.entry = entry
        ctx.candidates = candidates = list(entry.deployments)
        budget = 1 + ctx.config.routing.retries
        errors: list[UpstreamError] = []
        for attempt in range(budget):
            deployment = candidates[attempt % len(candidates)]
            if attempt >= len(candidates):
                # Coming back to a deployment already tried: jittered backoff first.
                delay = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** (attempt - len(candidates)))
                await asyncio.sleep(random.uniform(0, delay))
            ctx.deployment, ctx.attempts = deployment, attempt + 1
            try:
                await self.app(scope, receive, send)
                return
            except UpstreamError as exc:
                if ctx.response_started or not exc.retryable:
                    raise
                errors.append(exc)
        raise final_error(errors)
