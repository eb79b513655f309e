"""LLMContext: what the stack learns about one request, at `scope["state"]["llm"]`.

Data flows outward on this mutable object (usage, deployment, cache status), because
ContextVars only flow inward.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Literal

from asgi_llm.types import Headers, Scope

if TYPE_CHECKING:
    from asgi_llm.config.catalog import ModelEntry
    from asgi_llm.config.loader import Config
    from asgi_llm.config.schema import Deployment
    from asgi_llm.errors import ProxyError
    from asgi_llm.response_store import StoredResponse


@dataclass(frozen=True, slots=True)
class Quota:
    """A key's (`per: key`) or a team's (`per: tenant`) own limits, set at run time
    (asgi_llm/auth/quotas.py): what the limiter counts for it beside the config's rules."""

    per: Literal["key", "tenant"]
    who: str
    budget_usd: float | None
    budget_period: str
    rpm: int | None
    tpm: int | None


@dataclass(slots=True)
class Principal:
    """Who is calling: set by AuthMiddleware (or a user's own `authenticate` hook)."""

    id: str
    tenant: str | None = None
    roles: tuple[str, ...] = ()
    kind: str = "api_key"  # api_key | jwt | introspection | anonymous | custom
    admin: bool = False
    models: tuple[str, ...] = ("*",)  # glob patterns the principal may use
    endpoints: tuple[str, ...] = ("*",)
    # Set at run time (docs/teams.md): the key's and the team's own allow-lists, each of which
    # a model must match too, and the limits the limiter counts for them.
    allow_lists: tuple[tuple[str, ...], ...] = ()
    quotas: tuple[Quota, ...] = ()

    def may_use(self, entry: ModelEntry) -> bool:
        """Whether a served model is in the allow-list (its name or any alias matches), and
        in every runtime allow-list."""
        if "*" in self.models and not self.allow_lists:
            return True
        names = (entry.name, *entry.aliases)
        if "*" not in self.models and not any(
            fnmatchcase(name, pattern) for pattern in self.models for name in names
        ):
            return False
        return all(
            any(fnmatchcase(name, pattern) for pattern in allowed for name in names)
            for allowed in self.allow_lists
        )

    def may_call(self, endpoint: str) -> bool:
        return "*" in self.endpoints or endpoint in self.endpoints


@dataclass(slots=True)
class Usage:
    """Tokens of one answer, counted one way whatever the provider (docs/observability.md,
    "Token kinds"):

    - `prompt_tokens`: every input token, whatever it cost: fresh, read from a prompt cache
      and written to one (OpenAI's `prompt_tokens`; Anthropic's `input_tokens` +
      `cache_read_input_tokens` + `cache_creation_input_tokens`);
    - `cached_prompt_tokens`: of those, the ones read from a prompt cache;
    - `cache_write_tokens`: of those, the ones written to a prompt cache (5 minutes and 1 hour);
    - `cache_write_1h_tokens`: of the writes, the ones kept for 1 hour;
    - `completion_tokens`: every output token, reasoning included;
    - `reasoning_tokens`: of those, the reasoning tokens, when the provider tells them apart.

    `kinds()` splits the total into disjoint kinds, which is what prices and metrics use.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def kinds(self) -> tuple[tuple[str, int], ...]:
        """(kind, tokens) for each of TOKEN_KINDS, in that order; they add up to the total."""
        read, written = self.cached_prompt_tokens, self.cache_write_tokens
        hour = min(self.cache_write_1h_tokens, written)
        reasoning = min(self.reasoning_tokens, self.completion_tokens)
        return (
            ("input", max(0, self.prompt_tokens - read - written)),
            ("cache_read", read),
            ("cache_write", written - hour),
            ("cache_write_1h", hour),
            ("output", self.completion_tokens - reasoning),
            ("reasoning", reasoning),
        )


# The kinds of token a Usage splits into (a bounded metric label): fresh input, prompt-cache
# reads, prompt-cache writes (5 minutes, 1 hour), output other than reasoning, reasoning.
TOKEN_KINDS = ("input", "cache_read", "cache_write", "cache_write_1h", "output", "reasoning")


@dataclass(slots=True)
class Timings:
    start: float = field(default_factory=time.perf_counter)
    upstream_start: float | None = None
    first_byte: float | None = None
    end: float | None = None


@dataclass(slots=True)
class Attempt:
    """One upstream attempt, appended by the router as it makes it (`ctx.attempt_log`): what
    the ledger and tracing say per attempt. Times are `time.perf_counter()` readings."""

    deployment: str  # the deployment's id
    model: str  # the served model's name (a fallback's, when one served)
    start: float
    end: float | None = None
    status: int | None = None  # the upstream's answer (200 when it answered), or the error's
    error_type: str | None = None
    error_code: str | None = None
    first_byte: float | None = None  # streams: the first byte towards the client


@dataclass(slots=True)
class RateLimitInfo:
    """What RateLimitMiddleware decided for the request (`ctx.ratelimit`)."""

    reserved_tokens: int = 0
    degraded: bool = False  # the shared store was down: the local fallback decided
    store: str = "memory"  # memory | redis | local
    rejected: str | None = None  # window | concurrency | budget, when refused
    charged_tokens: int | None = None  # settled at the end
    charged_usd: float | None = None  # with budgets


def new_response_id() -> str:
    """`resp_` and 48 hex digits, as OpenAI's look: unguessable (ids are capabilities here:
    the store also checks the tenant, but an id should not be enumerable either)."""
    return "resp_" + os.urandom(24).hex()


@dataclass(slots=True)
class ResponsesCall:
    request: dict[str, Any]  # the Responses request as the client sent it
    response_id: str = field(default_factory=new_response_id)  # for a translated answer
    created_at: int = field(default_factory=lambda: int(time.time()))
    previous: StoredResponse | None = None  # the stored turn `previous_response_id` names
    history: list[dict[str, Any]] = field(default_factory=list)  # its items, in order
    expanded: bool = False  # the history is in the chat payload (the responses layer ran)
    native: bool = False  # this attempt speaks the upstream's own Responses API
    final: dict[str, Any] | None = None  # the response object the client got
    # Run once the final object is known and before its last bytes go out (the store), so a
    # client that asks for the response right after it ended finds it.
    on_final: Callable[[], Awaitable[None]] | None = None
    finalized: bool = False

    async def finalize(self) -> None:
        if self.final is not None and not self.finalized:
            self.finalized = True
            if self.on_final is not None:
                await self.on_final()

    @property
    def store(self) -> bool:
        """`store` defaults to true, as at OpenAI."""
        return self.request.get("store") is not False

    @property
    def previous_id(self) -> str | None:
        value = self.request.get("previous_response_id")
        return value if isinstance(value, str) and value else None


@dataclass(slots=True)
class MessagesCall:
    """A `POST /v1/messages` (or `/v1/messages/count_tokens`) request's own state: the request
    as the client sent it, for an Anthropic deployment to get it unchanged."""

    request: dict[str, Any]  # the Anthropic request as the client sent it
    headers: dict[str, str]  # the client's anthropic-version / anthropic-beta (an allow-list)
    # The first field the chat form could not say (then the chat form, which the layers see,
    # leaves it out): an attempt on a deployment that is not Anthropic answers this 400.
    refused: ProxyError | None = None
    native: bool = False  # this attempt sends the request to Anthropic as it came


@dataclass(slots=True)
class LLMContext:
    request_id: str
    config: Config
    endpoint: str  # chat | completions | embeddings | models | responses.* | admin.*
    grant: str = ""  # the role grant the route needs (`chat` for /v1/messages)
    body: bytes = b""
    payload: dict[str, Any] = field(default_factory=dict)
    model: str | None = None  # as the client wrote it
    stream: bool = False
    include_usage: bool = False  # the client asked for the usage chunk
    principal: Principal | None = None
    requested: ModelEntry | None = None  # the model the client named, resolved once (exchange)
    entry: ModelEntry | None = None  # the model being served (the router moves it to fallbacks)
    needs: frozenset[str] = frozenset()  # capabilities the request needs
    prompt_tokens_estimate: int = 0
    candidates: list[Deployment] = field(default_factory=list)
    deployment: Deployment | None = None
    attempts: int = 0
    attempt_log: list[Attempt] = field(default_factory=list)  # one per upstream attempt
    cache_status: str | None = None  # hit | miss | bypass
    cache_kind: str | None = None  # exact | semantic
    cache_stage: str | None = None  # what decided a semantic lookup (cache/semantic.py STAGES)
    # The answering attempt's usage: from the upstream, or, for a stream that ended before
    # saying it, what was delivered (accounting.delivered_usage); None if it never said.
    usage: Usage | None = None
    stream_start_usage: Usage | None = None  # the input side a stream told at its start
    # A whole (not streamed) answer's body bytes and their parse, set by a provider that sends
    # the very bytes it parsed: the cache's recorder takes the parse instead of a second one.
    parsed_answer: tuple[bytes, dict[str, Any]] | None = None
    streamed_chunks: int = 0  # content events relayed to the client (to charge cut streams)
    finish_reason: str | None = None
    cost_usd: float | None = None
    status: int | None = None
    response_started: bool = False
    completed: bool = False  # the last body message went out (ended well or not)
    disconnected: bool = False
    timings: Timings = field(default_factory=Timings)
    response_headers: Headers = field(default_factory=list)
    # What core layers learn for the layers outside them (metrics above all):
    error: ProxyError | None = None  # the error answered (the exchange's boundary)
    fallback_model: str | None = None  # the router served a fallback model, by name
    stream_failure: str | None = None  # code of the error event that ended a stream
    ratelimit: RateLimitInfo | None = None
    cache_bypass: str | None = None  # why the cache was not consulted
    cached_usage: Usage | None = None  # a cache hit's stored usage (`usage` stays None)
    inbound_format: str | None = None  # "anthropic" (/v1/messages), "responses" (/v1/responses)
    responses: ResponsesCall | None = None  # a /v1/responses request's own state
    messages: MessagesCall | None = None  # a /v1/messages request's own state
    extra: dict[str, Any] = field(default_factory=dict)  # for your own layers

    def add_header(self, name: bytes, value: bytes) -> None:
        """Queue a response header; the exchange applies them all on `http.response.start`."""
        self.response_headers.append((name, value))


def get_context(scope: Scope) -> LLMContext | None:
    state = scope.get("state")
    return state.get("llm") if state is not None else None


__all__ = [
    "TOKEN_KINDS",
    "Attempt",
    "LLMContext",
    "MessagesCall",
    "Principal",
    "Quota",
    "RateLimitInfo",
    "ResponsesCall",
    "Timings",
    "Usage",
    "get_context",
    "new_response_id",
]
