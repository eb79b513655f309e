"""What ProviderApp lets watch its attempts (tracing is the one observer today): a context
manager around each attempt whose value may wrap the attempt's transport (to add headers,
such as a `traceparent`, and read the status). Protocols only, so providers/ imports none of
its observers."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from asgi_llm.config.schema import Deployment
    from asgi_llm.context import LLMContext
    from asgi_llm.providers.transport import UpstreamTransport


class ObservedAttempt(Protocol):
    def transport(self, inner: UpstreamTransport) -> UpstreamTransport:
        """The transport this attempt sends through (`inner`, wrapped or not)."""
        ...


class AttemptObserver(Protocol):
    def attempt_span(
        self, ctx: LLMContext, deployment: Deployment
    ) -> AbstractContextManager[ObservedAttempt]:
        """Entered before the attempt is written, left when it ended (raised or not)."""
        ...


__all__ = ["AttemptObserver", "ObservedAttempt"]
