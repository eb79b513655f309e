"""What a provider is: how one attempt is written for an upstream and read back."""

from __future__ import annotations

import math
import re
import time
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import orjson

from asgi_llm.config.schema import Deployment
from asgi_llm.context import LLMContext, Usage
from asgi_llm.errors import UpstreamError, UpstreamStatus
from asgi_llm.providers.transport import ResponseHeaders, UpstreamRequest

_KEYLIKE = re.compile(r"\b(sk|rk|pk|sess|key)-[A-Za-z0-9_\-]{6,}")
MAX_ERROR_MESSAGE = 500


SSE = "text/event-stream"


class StreamAdapter(Protocol):
    done: bool  # the stream ended well ([DONE] or the provider's own end event)
    content_type: str  # what the upstream's stream must be (SSE; Bedrock's event stream)

    def feed(self, chunk: bytes) -> bytes:
        """Bytes of upstream stream in, OpenAI SSE bytes for the client out (may be empty)."""
        ...


class Provider(Protocol):
    """A wire format: how an attempt is written for an upstream and its answer read back.

    Optional: `counts_tokens = True` says `build` also writes a `count_tokens` request (the
    upstream counts a Messages request's tokens); without it, ProviderApp answers the
    proxy's estimate. A provider with several wire formats (`vertex`) makes it a function
    of the deployment."""

    def build(self, ctx: LLMContext, deployment: Deployment) -> UpstreamRequest:
        """The upstream request (credentials or a signature included)."""
        ...

    def read_response(self, ctx: LLMContext, deployment: Deployment, body: bytes) -> bytes:
        """A whole non-streamed upstream body in, the OpenAI-format body out; sets ctx.usage."""
        ...

    def stream(self, ctx: LLMContext, deployment: Deployment) -> StreamAdapter: ...

    def error(
        self, status: int, body: bytes, headers: ResponseHeaders, deployment: Deployment
    ) -> UpstreamError: ...


def counts_tokens(provider: Provider, deployment: Deployment) -> bool:
    """Whether a deployment's wire format has a token-counting API (its optional
    `counts_tokens`: True, or a function of the deployment)."""
    flag = getattr(provider, "counts_tokens", False)
    return flag(deployment) is True if callable(flag) else flag is True


def scrub(text: str, deployment: Deployment) -> str:
    """Remove anything key-like from upstream text before it reaches a client or a log."""
    if deployment.api_key and deployment.api_key in text:
        text = text.replace(deployment.api_key, "***")
    text = _KEYLIKE.sub(lambda m: m.group(1) + "-***", text)
    return text if len(text) <= MAX_ERROR_MESSAGE else text[: MAX_ERROR_MESSAGE - 3] + "..."


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), 3600.0)


def openai_error(status: int, body: bytes, headers: ResponseHeaders, deployment: Deployment) -> UpstreamError:
    """An upstream error answer in OpenAI's shape (OpenAI, Azure, vLLM, Ollama ...)."""
    message, error_type, code = f"The upstream answered HTTP {status}.", None, None
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        payload = None
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict):
            if isinstance(error.get("message"), str) and error["message"]:
                message = error["message"]
            error_type = error.get("type") if isinstance(error.get("type"), str) else None
            code = error.get("code") if isinstance(error.get("code"), str) else None
        elif isinstance(error, str):
            message = error
        elif isinstance(payload.get("message"), str):
            message = payload["message"]
    return UpstreamStatus(
        status,
        scrub(message, deployment),
        deployment=deployment.id,
        retry_after=parse_retry_after(headers.get("retry-after")),
        error_type=error_type,
        error_code=code,
    )


def usage_from(payload: Any) -> Usage | None:
    if not isinstance(payload, dict):
        return None
    usage = payload.get("usage")
    if not isinstance(usage, dict):
        return None
    prompt = usage.get("prompt_tokens", usage.get("input_tokens", 0))
    completion = usage.get("completion_tokens", usage.get("output_tokens", 0))
    if type(prompt) is not int or type(completion) is not int:
        return None
    # Chat says prompt/completion_tokens_details, the Responses API input/output_tokens_details.
    # Both count cache reads (and writes, where a server reports them) inside the prompt.
    inputs = ("prompt_tokens_details", "input_tokens_details")
    cached = min(_detail(usage, inputs, "cached_tokens"), prompt)
    written = min(_detail(usage, inputs, "cache_write_tokens"), prompt - cached)
    reasoning = _detail(usage, ("completion_tokens_details", "output_tokens_details"), "reasoning_tokens")
    return Usage(prompt, completion, cached, min(reasoning, completion), written)


def _detail(usage: dict[str, Any], sections: tuple[str, ...], name: str) -> int:
    for section in sections:
        details = usage.get(section)
        if isinstance(details, dict):
            value = details.get(name)
            if type(value) is int and value >= 0:
                return value
    return 0


def bad_response(deployment: Deployment, why: str) -> UpstreamError:
    return UpstreamError(
        f"The upstream sent a malformed response ({why}).",
        deployment=deployment.id,
        code="bad_upstream_response",
    )
