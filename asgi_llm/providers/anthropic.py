"""Anthropic Messages wire format (`provider: anthropic`), behind the OpenAI chat surface.

The request is translated to Anthropic's form, the answer back to OpenAI's, streams event
by event (asgi_llm/translate/). What OpenAI's form cannot carry (the native stop reason and
stop sequence, exact input tokens at stream start) is left in `ctx.native_hint` for
the `/v1/messages` endpoint to give back to Anthropic clients.
"""

from __future__ import annotations

import time

import orjson

from asgi_llm.config.schema import Deployment
from asgi_llm.context import LLMContext, Usage
from asgi_llm.errors import InvalidRequest, UpstreamError, UpstreamStatus
from asgi_llm.providers.base import bad_response, parse_retry_after, scrub
from asgi_llm.providers.transport import ResponseHeaders, UpstreamRequest
from asgi_llm.translate import MessagesToChatStream, chat_to_messages
from asgi_llm.translate.response import message_to_completion

DEFAULT_VERSION = "2023-06-01"
# Anthropic error types -> the contract's types for a 4xx passed on (5xx stay upstream_error).
_ERROR_TYPES = {
    "invalid_request_error": "invalid_request_error",
    "not_found_error": "invalid_request_error",
    "request_too_large": "invalid_request_error",
    "authentication_error": "authentication_error",
    "permission_error": "permission_error",
    "rate_limit_error": "rate_limit_error",
}


class AnthropicStream:
    """Anthropic events in, OpenAI chunks out; keeps ctx's usage, finish and hint current."""

    __slots__ = ("ctx", "done", "_translator", "_counted")

    def __init__(self, ctx: LLMContext, deployment: Deployment) -> None:
        self.ctx = ctx
        self.done = False
        self._translator = MessagesToChatStream(created=int(time.time()), include_usage=ctx.include_usage)
        self._translator.hint["deployment"] = deployment.id
        ctx.native_hint = self._translator.hint  # filled as the stream goes
        self._counted = 0

    def feed(self, chunk: bytes) -> bytes:
        translator = self._translator
        try:
            out = translator.feed(chunk)
        finally:
            # Even when an error event ends it: what went out is charged.
            ctx = self.ctx
            ctx.streamed_chunks += translator.chunks - self._counted
            self._counted = translator.chunks
            if translator.usage is not None:
                ctx.usage = Usage(*translator.usage)
            if translator.finish_reason is not None:
                ctx.finish_reason = translator.finish_reason
        self.done = translator.done
        return out


class AnthropicProvider:
    """`anthropic` deployments: POST {base_url}/messages with x-api-key and anthropic-version."""

    def build(self, ctx: LLMContext, deployment: Deployment) -> UpstreamRequest:
        if ctx.endpoint != "chat":
            raise InvalidRequest(
                f"Anthropic deployments serve chat completions, not {ctx.endpoint}.",
                code="unsupported_endpoint",
            )
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream" if ctx.stream else "application/json",
            "anthropic-version": deployment.api_version or DEFAULT_VERSION,
        }
        if deployment.api_key:
            headers["x-api-key"] = deployment.api_key
        body = chat_to_messages(ctx.payload, model=deployment.model)
        return UpstreamRequest("POST", deployment.url + "/messages", headers, orjson.dumps(body))

    def read_response(self, ctx: LLMContext, deployment: Deployment, body: bytes) -> bytes:
        try:
            message = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise bad_response(deployment, "not JSON") from None
        if not isinstance(message, dict) or message.get("type") != "message":
            raise bad_response(deployment, "not a message")
        try:
            completion = message_to_completion(message, created=int(time.time()))
        except ValueError as exc:
            raise bad_response(deployment, str(exc)) from None
        usage = completion.get("usage")
        ctx.usage = Usage(usage["prompt_tokens"], usage["completion_tokens"]) if usage else None
        ctx.finish_reason = completion["choices"][0]["finish_reason"]
        ctx.native_hint = {
            "deployment": deployment.id,
            "stop_reason": message.get("stop_reason"),
            "stop_sequence": message.get("stop_sequence"),
        }
        return orjson.dumps(completion)

    def stream(self, ctx: LLMContext, deployment: Deployment) -> AnthropicStream:
        return AnthropicStream(ctx, deployment)

    def error(
        self, status: int, body: bytes, headers: ResponseHeaders, deployment: Deployment
    ) -> UpstreamError:
        return anthropic_error(status, body, headers, deployment)


def anthropic_error(
    status: int, body: bytes, headers: ResponseHeaders, deployment: Deployment
) -> UpstreamError:
    """`{"type": "error", "error": {"type", "message"}}` as an UpstreamStatus: 529
    (overloaded) and every 5xx are retryable, a 4xx is passed on with its message."""
    message, error_type = f"The upstream answered HTTP {status}.", None
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        payload = None
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        if isinstance(error.get("message"), str) and error["message"]:
            message = error["message"]
        error_type = error.get("type") if isinstance(error.get("type"), str) else None
    return UpstreamStatus(
        status,
        scrub(message, deployment),
        deployment=deployment.id,
        retry_after=parse_retry_after(headers.get("retry-after")),
        error_type=_ERROR_TYPES.get(error_type or ""),
        error_code=None if error_type in _ERROR_TYPES else error_type,
    )
