"""`provider: vertex`: Google's models or Anthropic's on Vertex AI, by the model's name.

A `claude-*` model is Anthropic's publisher on Vertex AI: the Messages wire format of
`provider: anthropic` (the same translation, streams and native `/v1/messages` passthrough)
at `{publishers}/anthropic/models/{model}:rawPredict` (`:streamRawPredict` for streams),
with `anthropic_version: vertex-2023-10-16` in the body instead of a header and no `model`
in it (the URL names it). Every other model is Gemini (gemini.py's `VertexGeminiProvider`).
Both get the same OAuth2 access token from the deployment's transport (google_auth.py).
`/v1/messages/count_tokens` on a Claude model goes to `count-tokens:rawPredict`, the one call
whose body names the model.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson

from asgi_llm.config.schema import Deployment
from asgi_llm.context import LLMContext
from asgi_llm.errors import InvalidRequest, UpstreamError
from asgi_llm.providers.anthropic import AnthropicProvider, anthropic_error
from asgi_llm.providers.base import Provider, StreamAdapter
from asgi_llm.providers.gemini import VertexGeminiProvider, google_error, vertex_publishers, vertex_token
from asgi_llm.providers.transport import ResponseHeaders, UpstreamRequest
from asgi_llm.translate import chat_to_messages

VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"


def is_anthropic_model(model: str) -> bool:
    """Whether a Vertex AI model name is Anthropic's (`claude-sonnet-4-5@20250929`)."""
    return model.startswith("claude-")


class VertexAnthropicProvider(AnthropicProvider):
    """Claude on Vertex AI: AnthropicProvider's reading of answers, streams and errors, with
    Vertex AI's URLs, body and credentials."""

    counts_tokens = True  # Vertex AI's count-tokens:rawPredict

    def headers(self, ctx: LLMContext, deployment: Deployment) -> dict[str, str]:
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream" if ctx.stream else "application/json",
            **vertex_token(deployment),
        }
        call = ctx.messages
        beta = call.headers.get("anthropic-beta") if call is not None else None
        if beta:  # the client's betas; its anthropic-version is Vertex's, in the body
            headers["anthropic-beta"] = beta
        return headers

    def build(self, ctx: LLMContext, deployment: Deployment) -> UpstreamRequest:
        call = ctx.messages
        if ctx.endpoint == "count_tokens" and call is not None:
            # The one call whose body names the model; the URL names a counting "model".
            call.native = True
            counted = {
                **call.request,
                "model": deployment.model,
                "anthropic_version": VERTEX_ANTHROPIC_VERSION,
            }
            url = f"{vertex_publishers(deployment)}/anthropic/models/count-tokens:rawPredict"
            return UpstreamRequest("POST", url, self.headers(ctx, deployment), orjson.dumps(counted))
        if ctx.endpoint != "chat":
            raise InvalidRequest(
                f"Anthropic models on Vertex AI serve chat completions and messages, not {ctx.endpoint}.",
                code="unsupported_endpoint",
            )
        body: dict[str, Any]
        if call is not None:
            call.native = True  # sent as the client wrote it, but for the model and version
            body = dict(call.request)
        else:
            body = chat_to_messages(ctx.payload, model=deployment.model)
        body.pop("model", None)
        body["anthropic_version"] = VERTEX_ANTHROPIC_VERSION
        method = "streamRawPredict" if ctx.stream else "rawPredict"
        model = quote(deployment.model, safe="@")
        url = f"{vertex_publishers(deployment)}/anthropic/models/{model}:{method}"
        return UpstreamRequest("POST", url, self.headers(ctx, deployment), orjson.dumps(body))

    def error(
        self, status: int, body: bytes, headers: ResponseHeaders, deployment: Deployment
    ) -> UpstreamError:
        # The model answers Anthropic's error shape; Vertex AI's own front (credentials,
        # quotas, an unknown model) answers Google's.
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            payload = None
        if isinstance(payload, dict) and payload.get("type") == "error":
            return anthropic_error(status, body, headers, deployment)
        return google_error(status, body, headers, deployment)


class VertexProvider:
    """The `vertex` wire format: Anthropic's for a Claude model, else Gemini's."""

    def __init__(self) -> None:
        self.gemini = VertexGeminiProvider()
        self.anthropic = VertexAnthropicProvider()

    def counts_tokens(self, deployment: Deployment) -> bool:
        """Claude's tokens are counted by Vertex AI; Gemini's are the proxy's estimate."""
        return self.wire(deployment) is self.anthropic

    def wire(self, deployment: Deployment) -> Provider:
        return self.anthropic if is_anthropic_model(deployment.model) else self.gemini

    def build(self, ctx: LLMContext, deployment: Deployment) -> UpstreamRequest:
        return self.wire(deployment).build(ctx, deployment)

    def read_response(self, ctx: LLMContext, deployment: Deployment, body: bytes) -> bytes:
        return self.wire(deployment).read_response(ctx, deployment, body)

    def stream(self, ctx: LLMContext, deployment: Deployment) -> StreamAdapter:
        return self.wire(deployment).stream(ctx, deployment)

    def error(
        self, status: int, body: bytes, headers: ResponseHeaders, deployment: Deployment
    ) -> UpstreamError:
        return self.wire(deployment).error(status, body, headers, deployment)


__all__ = [
    "VERTEX_ANTHROPIC_VERSION",
    "VertexAnthropicProvider",
    "VertexProvider",
    "is_anthropic_model",
]
