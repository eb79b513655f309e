"""OpenAI wire format: OpenAI itself, any OpenAI-compatible server, and Azure OpenAI."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson

from asgi_llm.config.schema import Deployment
from asgi_llm.context import LLMContext
from asgi_llm.errors import UpstreamError
from asgi_llm.providers.base import SSE, bad_response, openai_error, usage_from
from asgi_llm.providers.native_responses import NativeResponsesStream, native_body, read_native
from asgi_llm.providers.transport import ResponseHeaders, UpstreamRequest
from asgi_llm.sse import DONE, SSEDecoder, event_data

PATHS = {"chat": "/chat/completions", "completions": "/completions", "embeddings": "/embeddings"}
_USAGE_NULL = (b'"usage":null', b'"usage": null')
_CONTENT_FILTER = (b'"finish_reason":"content_filter"', b'"finish_reason": "content_filter"')


def upstream_body(ctx: LLMContext, deployment: Deployment) -> bytes:
    # Always re-serialize the parsed object: what was authorized is what is sent, even
    # for a body with duplicate keys (THREATS R2).
    payload = ctx.payload
    changes: dict[str, Any] = {}
    if payload.get("model") != deployment.model:
        changes["model"] = deployment.model
    if ctx.stream and not ctx.include_usage:
        # Ask for usage anyway so tokens can be charged; the chunk is dropped again.
        options = payload.get("stream_options") or {}
        changes["stream_options"] = {**options, "include_usage": True}
    return orjson.dumps({**payload, **changes} if changes else payload)


class OpenAIStream:
    """Passes OpenAI SSE through event by event, reading usage on the way."""

    content_type = SSE
    __slots__ = ("ctx", "done", "_decoder", "_drop_usage")

    def __init__(self, ctx: LLMContext) -> None:
        self.ctx = ctx
        self.done = False
        self._decoder = SSEDecoder()
        self._drop_usage = not ctx.include_usage

    def feed(self, chunk: bytes) -> bytes:
        out = []
        for event in self._decoder.feed(chunk):
            data = event_data(event)
            if data is None:
                continue  # comments and keep-alives: nothing for the client
            if data == b"[DONE]":
                self.done = True
                out.append(DONE + b"\n\n")
                continue
            if b'"usage"' in data and not any(marker in data for marker in _USAGE_NULL):
                data = self._take_usage(data)
                if data is None:
                    continue
            elif any(marker in data for marker in _CONTENT_FILTER):
                self.ctx.finish_reason = "content_filter"
            self.ctx.streamed_chunks += 1
            out.append(b"data: " + data + b"\n\n")
        return b"".join(out)

    def _take_usage(self, data: bytes) -> bytes | None:
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return data
        usage = usage_from(chunk)
        if usage is not None:
            self.ctx.usage = usage
        if not self._drop_usage:
            return data
        if isinstance(chunk, dict) and chunk.get("choices"):
            # Some servers put usage on the last content chunk: keep the chunk, drop usage.
            chunk.pop("usage", None)
            return orjson.dumps(chunk)
        return None


class OpenAIProvider:
    """`openai` and `openai-compatible` deployments. With `native_responses`, a
    `/v1/responses` request goes out in the Responses API itself (OpenAI, Azure); otherwise
    it goes out translated, as a chat request (responses_api/native.py)."""

    def __init__(self, *, native_responses: bool = False) -> None:
        self.native_responses = native_responses

    def url(self, ctx: LLMContext, deployment: Deployment) -> str:
        return deployment.url + PATHS[ctx.endpoint]

    def responses_url(self, deployment: Deployment) -> str:
        return deployment.url + "/responses"

    def headers(self, deployment: Deployment) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": "application/json"}
        if deployment.api_key:
            headers["authorization"] = f"Bearer {deployment.api_key}"
        return headers

    def build(self, ctx: LLMContext, deployment: Deployment) -> UpstreamRequest:
        call = ctx.responses
        if call is not None and self.native_responses:
            call.native = True
            return UpstreamRequest(
                "POST",
                self.responses_url(deployment),
                self.headers(deployment),
                native_body(call, deployment),
            )
        return UpstreamRequest(
            "POST", self.url(ctx, deployment), self.headers(deployment), upstream_body(ctx, deployment)
        )

    def read_response(self, ctx: LLMContext, deployment: Deployment, body: bytes) -> bytes:
        if ctx.responses is not None and ctx.responses.native:
            return read_native(ctx, deployment, body)
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise bad_response(deployment, "not JSON") from None
        if not isinstance(payload, dict) or ("choices" not in payload and "data" not in payload):
            raise bad_response(deployment, "no choices")
        ctx.usage = usage_from(payload)  # None when the upstream did not say: limits estimate
        choices = payload.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            ctx.finish_reason = choices[0].get("finish_reason")
        ctx.parsed_answer = (body, payload)  # sent as is: the cache need not parse it again
        return body

    def stream(self, ctx: LLMContext, deployment: Deployment) -> OpenAIStream | NativeResponsesStream:
        if ctx.responses is not None and ctx.responses.native:
            return NativeResponsesStream(ctx)
        return OpenAIStream(ctx)

    def error(
        self, status: int, body: bytes, headers: ResponseHeaders, deployment: Deployment
    ) -> UpstreamError:
        return openai_error(status, body, headers, deployment)


class AzureProvider(OpenAIProvider):
    """Azure OpenAI: deployment-name URLs, `api-version`, the `api-key` header."""

    def url(self, ctx: LLMContext, deployment: Deployment) -> str:
        name = quote(deployment.model, safe="")
        version = quote(deployment.api_version or "", safe="")
        return f"{deployment.url}/openai/deployments/{name}{PATHS[ctx.endpoint]}?api-version={version}"

    def responses_url(self, deployment: Deployment) -> str:
        # The Responses API is not per deployment on Azure: the deployment goes in `model`.
        version = quote(deployment.api_version or "", safe="")
        return f"{deployment.url}/openai/responses?api-version={version}"

    def headers(self, deployment: Deployment) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": "application/json"}
        if deployment.api_key:
            headers["api-key"] = deployment.api_key
        return headers
