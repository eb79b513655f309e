"""The "request finished" hook: what sees each LLM request once it is over, off its path.

MetricsMiddleware (outermost in the stack, so it sees every outcome) calls every listener
that wants the request's config snapshot, once per finished LLM request, with its scope, its
context and the RequestRecord the metrics were built from: the ledger writer and the tracer read
what they need from both, and nothing reads the context twice.

A listener runs on the event loop in the request's own `finally`: it must not block, must
not await and must be cheap (build a small record and queue it). An exception it raises is
logged and counted by the metrics layer, never passed to the client.

A listener may also define `observe(ctx, send) -> send`, called as the request goes in: it
returns `send` itself, or a wrapper that copies the answer aside as it passes (the ledger
does, with `ledger.store_content`); it must never hold a message back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from asgi_llm.config.loader import Config
    from asgi_llm.context import LLMContext
    from asgi_llm.metrics.record import RequestRecord
    from asgi_llm.types import Scope


@runtime_checkable
class FinishedListener(Protocol):
    def enabled(self, config: Config) -> bool:
        """Whether requests served under this config snapshot are wanted (asked once per
        snapshot: a reload that turns the feature on or off is followed)."""

    def finished(self, scope: Scope, ctx: LLMContext, record: RequestRecord) -> None:
        """One finished request (its scope for what only the headers say). Never blocks,
        never raises into the request."""


__all__ = ["FinishedListener"]
