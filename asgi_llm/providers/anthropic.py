"""Anthropic Messages wire format (`provider: anthropic`).

A `/v1/messages` (or count_tokens) request goes out as the client sent it and its answer
comes back as it came (native_messages.py). A chat request is translated to Anthropic's
form and the answer back to OpenAI's, streams event by event (asgi_llm/translate/).
"""

from __future__ import annotations

import time

import orjson

from asgi_llm.config.schema import Deployment
from asgi_llm.context import LLMContext
from asgi_llm.errors import InvalidRequest, UpstreamError, UpstreamStatus
from asgi_llm.providers.base import SSE, bad_response, parse_retry_after, scrub
from asgi_llm.providers.native_messages import (
    NativeMessagesStream,
    native_body,
    read_native,
    usage_from_anthropic,
)
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
    """Anthropic events in, OpenAI chunks out; keeps ctx's usage and finish reason current."""

    content_type = SSE
    __slots__ = ("ctx", "done", "_translator", "_counted")

    def __init__(self, ctx: LLMContext) -> None:
        self.ctx = ctx
        self.done = False
        self._translator = MessagesToChatStream(created=int(time.time()), include_usage=ctx.include_usage)
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
                ctx.usage = usage_from_anthropic(translator.usage)
            elif translator.start_usage is not None and ctx.stream_start_usage is None:
                ctx.stream_start_usage = usage_from_anthropic(translator.start_usage)
            if translator.finish_reason is not None:
                ctx.finish_reason = translator.finish_reason
        self.done = translator.done
        return out


class AnthropicProvider:
    """`anthropic` deployments: POST {base_url}/messages with x-api-key and anthropic-version
    (and {base_url}/messages/count_tokens for count_tokens)."""

    counts_tokens = True

    def headers(self, ctx: LLMContext, deployment: Deployment) -> dict[str, str]:
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream" if ctx.stream else "application/json",
            "anthropic-version": deployment.api_version or DEFAULT_VERSION,
        }
        call = ctx.messages
        if call is not None:  # the version the client wrote its request for, its betas
            headers.update(call.headers)
        if deployment.api_key:
            headers["x-api-key"] = deployment.api_key
        return headers

    def build(self, ctx: LLMContext, deployment: Deployment) -> UpstreamRequest:
        call = ctx.messages
        if call is not None and ctx.endpoint in ("chat", "count_tokens"):
            call.native = True
            path = "/messages/count_tokens" if ctx.endpoint == "count_tokens" else "/messages"
            return UpstreamRequest(
                "POST", deployment.url + path, self.headers(ctx, deployment), native_body(call, deployment)
            )
        if ctx.endpoint != "chat":
            raise InvalidRequest(
                f"Anthropic deployments serve chat completions, not {ctx.endpoint}.",
                code="unsupported_endpoint",
            )
        body = chat_to_messages(ctx.payload, model=deployment.model)
        return UpstreamRequest(
            "POST", deployment.url + "/messages", self.headers(ctx, deployment), orjson.dumps(body)
        )

    def read_response(self, ctx: LLMContext, deployment: Deployment, body: bytes) -> bytes:
        if ctx.messages is not None and ctx.messages.native:
            return read_native(ctx, deployment, body)
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
        ctx.usage = usage_from_anthropic(message.get("usage"))
        ctx.finish_reason = completion["choices"][0]["finish_reason"]
        return orjson.dumps(completion)

    def stream(self, ctx: LLMContext, deployment: Deployment) -> AnthropicStream | NativeMessagesStream:
        if ctx.messages is not None and ctx.messages.native:
            return NativeMessagesStream(ctx)
        return AnthropicStream(ctx)

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
