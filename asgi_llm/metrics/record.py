"""RequestRecord: the facts of one finished request, read off its LLMContext once.

Every label value in a record is bounded: models and deployments are the catalog's names
(an unknown model is `other`), error types and codes come from an allow-list or a capped
set, and no key, user, tenant or request id is ever a label. `request_id` travels for
exporters that write logs or traces; metric exporters must not use it as a label.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from asgi_llm.context import LLMContext
from asgi_llm.errors import ProxyError, RateLimited

OTHER = "other"
NONE = "none"

ERROR_TYPES = frozenset(
    {
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "not_found_error",
        "rate_limit_error",
        "service_unavailable",
        "server_error",
        "timeout",
        "timeout_error",
        "upstream_error",
        "request_timeout",
    }
)
_CODE = re.compile(r"[a-z0-9_]{1,64}")
_STATUS_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}


class LabelGuard:
    """Admits at most `limit` distinct values of one label; later new ones become `other`.

    What the config names is bounded already; this also bounds what reloads add over a
    process's life and what an upstream writes in its error codes."""

    __slots__ = ("_seen", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        seen = self._seen
        if value in seen:
            return value
        if len(seen) >= self.limit:
            return OTHER
        seen.add(value)
        return value


# The stages a semantic cache lookup can end at (cache/semantic.py STAGES; a test keeps the
# two equal): spelt here so that metrics never import the semantic tier (numpy, models).
SEMANTIC_STAGES = frozenset(("cosine", "judge", "threshold", "guard"))


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs ~3 µs more
class RequestRecord:
    endpoint: str  # chat | completions | embeddings | models | admin.*
    model: str  # the served model's name; `other` for names the catalog does not know
    deployment: str  # the deployment that answered (last attempt), or `none`
    status: int  # the HTTP status sent; 0 when none was (the client left first)
    status_class: str  # 2xx | 3xx | 4xx | 5xx | disconnected | none
    cache: str  # hit | miss | bypass | none
    cache_kind: str | None  # exact | semantic, on hits
    cache_stage: str | None  # what decided a semantic lookup, hit or miss (cache.semantic.STAGES)
    stream: bool
    error_type: str | None
    error_code: str | None
    rate_limited: bool  # refused by the proxy's own limits or budgets (not an upstream 429)
    attempts: int
    fallback_from: str | None  # the model asked for, when a fallback model served instead
    stream_failure: str | None  # a stream cut after its first byte: its error code
    disconnected: bool
    prompt_tokens: int | None
    completion_tokens: int | None
    # (kind, tokens) of Usage.kinds() that are not 0: they add up to the total (context.TOKEN_KINDS)
    token_kinds: tuple[tuple[str, int], ...]
    cost_usd: float | None
    total_s: float
    ttft_s: float | None  # streams: first byte to the client, from the request's start
    upstream_s: float | None  # the last attempt, from its start to its end
    overhead_s: float | None  # total minus upstream time: what the proxy itself took
    request_id: str  # for logs and traces only: never a metric label


class RecordBuilder:
    """Turns a finished context into a RequestRecord with bounded labels."""

    def __init__(self, max_label_values: int = 500) -> None:
        self.models = LabelGuard(max_label_values)
        self.deployments = LabelGuard(max_label_values)
        self.codes = LabelGuard(max_label_values)

    def build(self, ctx: LLMContext, error: BaseException | None, now: float) -> RequestRecord:
        if error is None:
            error = ctx.error
        timings = ctx.timings
        total = now - timings.start
        upstream = None
        if timings.upstream_start is not None and timings.end is not None:
            upstream = max(0.0, timings.end - timings.upstream_start)
        ttft = None
        if ctx.stream and timings.first_byte is not None:
            ttft = max(0.0, timings.first_byte - timings.start)

        status = ctx.status
        error_type = error_code = None
        if isinstance(error, ProxyError):
            if status is None or not ctx.response_started:
                status = error.status
            error_type = error.type if error.type in ERROR_TYPES else OTHER
            code = error.code
            error_code = self.codes(code) if code and _CODE.fullmatch(code) else (OTHER if code else None)
        elif error is not None:  # anything else is answered as a 500 by the exchange
            status = status or 500
            error_type, error_code = "server_error", "internal_error"
        if status is not None:
            status_class = _STATUS_CLASSES.get(status // 100, OTHER)
        else:
            status_class = "disconnected" if ctx.disconnected else NONE

        entry = ctx.entry
        asked = asked_model(ctx)
        if entry is None and asked is not None and ctx.model is None:
            # Refused while the request was checked (the exchange resolves only a valid one):
            # the body may still name a served model.
            entry = ctx.config.catalog.resolve(asked)
        model = self.models(entry.name) if entry is not None else (OTHER if asked is not None else NONE)
        fallback_from = None
        if ctx.fallback_model is not None:
            first = ctx.requested
            fallback_from = self.models(first.name) if first is not None else OTHER
        deployment = self.deployments(ctx.deployment.id) if ctx.deployment is not None else NONE
        usage = ctx.usage
        stream_failure = ctx.stream_failure
        if stream_failure is not None:
            stream_failure = (
                self.codes(stream_failure)
                if isinstance(stream_failure, str) and _CODE.fullmatch(stream_failure)
                else OTHER
            )
        return RequestRecord(
            endpoint=ctx.endpoint,
            model=model,
            deployment=deployment,
            status=status or 0,
            status_class=status_class,
            cache=ctx.cache_status if ctx.cache_status in ("hit", "miss", "bypass") else NONE,
            cache_kind=ctx.cache_kind if ctx.cache_kind in ("exact", "semantic") else None,
            cache_stage=ctx.cache_stage if ctx.cache_stage in SEMANTIC_STAGES else None,
            stream=ctx.stream,
            error_type=error_type,
            error_code=error_code,
            rate_limited=isinstance(error, RateLimited),
            attempts=ctx.attempts,
            fallback_from=fallback_from,
            stream_failure=stream_failure,
            disconnected=ctx.disconnected,
            prompt_tokens=usage.prompt_tokens if usage is not None else None,
            completion_tokens=usage.completion_tokens if usage is not None else None,
            token_kinds=tuple(kind for kind in usage.kinds() if kind[1]) if usage is not None else (),
            cost_usd=ctx.cost_usd,
            total_s=total,
            ttft_s=ttft,
            upstream_s=upstream,
            overhead_s=max(0.0, total - upstream) if upstream is not None else None,
            request_id=ctx.request_id,
        )


def asked_model(ctx: LLMContext) -> str | None:
    """The model name the client wrote: the parsed one, else (refused while the request was
    checked) whatever string the body holds."""
    asked = ctx.model
    if asked is None:
        asked = ctx.payload.get("model")
        asked = asked if isinstance(asked, str) else None
    return asked


def as_dict(record: RequestRecord) -> dict[str, Any]:
    """The record as a plain dict (for log-pipeline exporters)."""
    return dataclasses.asdict(record)


__all__ = ["LabelGuard", "RecordBuilder", "RequestRecord", "as_dict", "asked_model"]
