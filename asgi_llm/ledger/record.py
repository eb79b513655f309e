"""LedgerRecord and AttemptRecord: one finished request, read once off its context.

What the metrics layer already worked out (status, error type and code, cache result,
timings) comes from its RequestRecord; what only the ledger keeps (who, which names exactly,
every token count, cost, tags, content) comes from the context. Everything stored is bounded:
free text the client chose (user, tags, the model name it wrote) is cut to a length, tags to
a count, and content is kept only when `ledger.store_content` says so, redacted of
credentials.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson

from asgi_llm.accounting import charged_usage, deployment_cost, request_cost
from asgi_llm.cache.recorder import Recorder
from asgi_llm.config.schema import Ledger
from asgi_llm.context import LLMContext
from asgi_llm.metrics.record import NONE, RequestRecord, asked_model
from asgi_llm.redact import redact_credentials
from asgi_llm.types import Scope, Send

MAX_NAME = 256  # the model name the client wrote, a user id
MAX_TAGS = 16
MAX_TAG_KEY = 64
MAX_TAG_VALUE = 256
MAX_CONTENT = 64 * 1024  # characters of prompt, of completion
MAX_ANSWER_BYTES = 1024 * 1024  # a larger answer is not copied (its completion stays null)
_ANSWER = "ledger.answer"  # ctx.extra: the answer's copy, with store_content
_CONTENT_FIELDS = ("messages", "prompt", "input", "system")
# tuple.__new__(NamedTupleClass, values): the record without the generated __new__'s Python
# frame and its 33 arguments (0.45 -> 0.12 us a record, on every request's path).
_new = tuple.__new__


class AttemptRecord(NamedTuple):
    n: int  # 1, 2, ... in the order the router made them
    deployment: str
    model: str
    start_ms: float  # from the request's start
    duration_ms: float | None
    status: int | None
    error_type: str | None
    error_code: str | None


class LedgerRecord(NamedTuple):
    """A tuple, not a dataclass: built on every request's path, and already the row the stores
    write, in `sql.REQUEST_COLUMNS`' order (the tags and the attempts as their JSON text,
    encoded while the request's objects are at hand): the writer binds or copies it as it is."""

    id: str  # unique per record (the idempotency key): a client may reuse an x-request-id
    request_id: str
    ts: float  # when the request arrived, UTC epoch seconds
    key_id: str | None
    tenant: str | None
    user: str | None
    endpoint: str
    model_asked: str | None
    model: str | None  # the model served (a fallback's name when one served)
    deployment: str | None  # the deployment that answered (the last attempt)
    status: int  # 0: no status was sent (the client left first)
    error_type: str | None
    error_code: str | None
    attempts: int
    cache: str | None  # hit | miss | bypass
    cache_kind: str | None  # exact | semantic
    stream: bool
    input_tokens: int  # every input token (context.Usage.prompt_tokens)
    output_tokens: int  # every output token, reasoning included
    cached_tokens: int  # of the input, read from a prompt cache
    cache_write_tokens: int  # of the input, written to a prompt cache (both TTLs)
    cache_write_1h_tokens: int  # of those, kept for an hour
    reasoning_tokens: int  # of the output
    cost_usd: float
    saved_usd: float  # a cache hit: what its stored usage costs at the model's prices
    latency_ms: float
    upstream_ms: float | None
    ttft_ms: float | None
    client_gone: bool
    tags: str | None  # a JSON object (encode_tags); None: no tags
    prompt: str | None
    completion: str | None
    attempt_log: str | None  # a JSON array of AttemptRecord arrays (encode_attempts); None: none


def build_record(
    record_id: str, scope: Scope, ctx: LLMContext, request: RequestRecord, settings: Ledger
) -> LedgerRecord:
    """The ledger's record of a finished request (cheap: no I/O, a few dict reads)."""
    user, header_tags = _from_headers(scope, settings.user_header)
    principal = ctx.principal
    if user is None and principal is not None and principal.kind in ("jwt", "introspection"):
        user = principal.id  # the token's subject claim (auth.jwt.subject_claim)
    if user is None:
        body_user = ctx.payload.get("user")  # OpenAI's end-user field
        user = body_user if isinstance(body_user, str) and body_user else None
    usage = charged_usage(ctx)
    saved = 0.0
    entry = ctx.entry or ctx.requested
    if ctx.cache_status == "hit" and ctx.cached_usage is not None and entry is not None and entry.deployments:
        saved = deployment_cost(ctx.cached_usage, entry.deployments[0]) or 0.0
    start = ctx.timings.start
    asked = asked_model(ctx)
    deployment = ctx.deployment
    upstream_s, ttft_s = request.upstream_s, request.ttft_s
    attempts = None
    if ctx.attempt_log:
        attempts = orjson.dumps(
            [
                (
                    n,
                    a.deployment,
                    a.model,
                    (a.start - start) * 1000.0,
                    (a.end - a.start) * 1000.0 if a.end is not None else None,
                    a.status,
                    a.error_type,
                    a.error_code,
                )
                for n, a in enumerate(ctx.attempt_log, 1)
            ]
        ).decode()
    metadata = ctx.payload.get("metadata")
    return _new(
        LedgerRecord,
        (
            record_id,
            ctx.request_id,
            time.time() - request.total_s,
            principal.id if principal is not None else None,
            principal.tenant if principal is not None else None,
            user[:MAX_NAME] if user is not None else None,
            ctx.endpoint,
            asked[:MAX_NAME] if asked is not None else None,
            entry.name if entry is not None else None,
            deployment.id if deployment is not None else None,
            request.status,
            request.error_type,
            request.error_code,
            ctx.attempts,
            request.cache if request.cache != NONE else None,
            request.cache_kind,
            ctx.stream,
            usage.prompt_tokens if usage is not None else 0,
            usage.completion_tokens if usage is not None else 0,
            usage.cached_prompt_tokens if usage is not None else 0,
            usage.cache_write_tokens if usage is not None else 0,
            usage.cache_write_1h_tokens if usage is not None else 0,
            usage.reasoning_tokens if usage is not None else 0,
            request_cost(ctx),
            saved,
            request.total_s * 1000.0,
            upstream_s * 1000.0 if upstream_s is not None else None,
            ttft_s * 1000.0 if ttft_s is not None else None,
            ctx.disconnected,
            encode_tags(_tags(metadata, header_tags)) if metadata is not None or header_tags else None,
            _prompt(ctx.payload) if settings.store_content else None,
            _completion(ctx) if settings.store_content else None,
            attempts,
        ),
    )


def encode_tags(tags: dict[str, str]) -> str | None:
    """The `tags` column: a JSON object, or None when there are none."""
    return orjson.dumps(tags).decode() if tags else None


def encode_attempts(attempts: Sequence[AttemptRecord]) -> str | None:
    """The `attempt_log` column: a JSON array of the attempts as arrays, or None."""
    return orjson.dumps(attempts, default=tuple).decode() if attempts else None


def _from_headers(scope: Scope, user_header: str) -> tuple[str | None, str | None]:
    """The user header's value and the `x-llm-tags` header's, if sent."""
    wanted = user_header.encode("latin-1")
    user = tags = None
    for name, value in scope.get("headers", ()):
        if name == wanted:
            user = _printable(value.decode("latin-1"))
        elif name == b"x-llm-tags":
            tags = value.decode("latin-1")
    return user, tags


def _printable(text: str) -> str | None:
    text = "".join(c for c in text[: MAX_NAME * 2] if c.isprintable()).strip()
    return text[:MAX_NAME] or None


def _tags(metadata: Any, header: str | None) -> dict[str, str]:
    """`metadata` from the body (a JSON object of strings, numbers, booleans) and the
    `x-llm-tags` header (`team=search, experiment=b`; a bare word is a tag with value ""):
    at most MAX_TAGS, keys and values cut to a length; the header's win on a clash."""
    tags: dict[str, str] = {}
    if isinstance(metadata, dict):
        for key, value in metadata.items():
            if isinstance(value, (str, int, float, bool)) and isinstance(key, str):
                _add_tag(tags, key, str(value).lower() if isinstance(value, bool) else str(value))
    if header:
        for part in header.split(",")[: MAX_TAGS * 2]:
            key, _, value = part.partition("=")
            _add_tag(tags, key.strip(), value.strip())
    return tags


def _add_tag(tags: dict[str, str], key: str, value: str) -> None:
    key = _printable(key[:MAX_TAG_KEY]) or ""
    if key and (key in tags or len(tags) < MAX_TAGS):
        tags[key] = "".join(c for c in value[:MAX_TAG_VALUE] if c.isprintable())


def _prompt(payload: dict[str, Any]) -> str | None:
    found = {name: payload[name] for name in _CONTENT_FIELDS if name in payload}
    if not found:
        return None
    return _content(found)


def watch_answer(ctx: LLMContext, send: Send) -> Send:
    """`send`, copying the answer aside as it passes (the cache's Recorder: a whole success
    only, up to MAX_ANSWER_BYTES), for `_completion`."""
    recorder = Recorder(ctx, MAX_ANSWER_BYTES)
    ctx.extra[_ANSWER] = recorder
    return recorder.wrap(send)


def _completion(ctx: LLMContext) -> str | None:
    """The answer's content: what `watch_answer` copied (choices, or Anthropic's content), or
    a Responses API answer's output."""
    final = ctx.responses.final if ctx.responses is not None else None
    if final is not None:
        return _content(final.get("output", []))
    recorder = ctx.extra.get(_ANSWER)
    response = recorder.result() if recorder is not None else None
    if response is None:
        return None
    for field in ("choices", "content", "output", "data"):
        if field in response:
            return _content(response[field])
    return None


def _content(value: Any) -> str:
    return redact_credentials(orjson.dumps(value).decode()[:MAX_CONTENT])


__all__ = ["AttemptRecord", "LedgerRecord", "build_record", "encode_attempts", "encode_tags", "watch_answer"]
