"""Gemini's wire format behind the OpenAI surface: `gemini` (Google AI Studio, an API key in
`x-goog-api-key`) and Gemini on `vertex` (Vertex AI, an OAuth2 access token), which differ
only in their URLs, their credentials and their embeddings API (vertex.py picks this one or
Anthropic's for a Vertex deployment).

Requests and answers are translated by asgi_llm/translate/gemini_*.py; /v1/messages and
/v1/responses reach here as chat requests, so they work through the same translation.
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import quote

import orjson

from asgi_llm.config.schema import Deployment
from asgi_llm.context import LLMContext, Usage
from asgi_llm.errors import InvalidRequest, UpstreamError, UpstreamStatus
from asgi_llm.providers.base import SSE, bad_response, parse_retry_after, scrub
from asgi_llm.providers.transport import ResponseHeaders, UpstreamRequest
from asgi_llm.translate.gemini_embeddings import (
    embed_request,
    embeddings_list,
    gemini_embeddings,
    predict_embeddings,
    predict_request,
)
from asgi_llm.translate.gemini_request import chat_to_gemini
from asgi_llm.translate.gemini_response import gemini_to_completion, usage_numbers
from asgi_llm.translate.gemini_stream import GeminiToChatStream

# Google API keys and OAuth2 access tokens, should an upstream message ever echo one.
_GOOGLE_SECRETS = re.compile(r"AIza[0-9A-Za-z_\-]{20,}|ya29\.[0-9A-Za-z_\-.]+")
# Google's canonical error statuses -> the contract's types for a 4xx passed on.
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
}


# A deployment's `builtin_tools` as Gemini's tools (answered in text; their grounding and
# URL metadata have no place in a chat answer and are not passed on).
_BUILTIN_TOOLS = {"google_search": "googleSearch", "url_context": "urlContext"}


def builtin_tools(names: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{_BUILTIN_TOOLS[name]: {}} for name in names]


class GeminiStream:
    """Gemini events in, OpenAI chunks out; keeps ctx's usage and finish reason current."""

    content_type = SSE
    __slots__ = ("ctx", "done", "_translator", "_counted")

    def __init__(self, ctx: LLMContext, deployment: Deployment) -> None:
        self.ctx = ctx
        self.done = False
        n = ctx.payload.get("n")
        self._translator = GeminiToChatStream(
            created=int(time.time()),
            model=deployment.model,
            include_usage=ctx.include_usage,
            candidates=n if type(n) is int and n > 1 else 1,
        )
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


class GeminiProvider:
    """`gemini`: POST {base_url}/v1beta/models/{model}:generateContent (or
    :streamGenerateContent?alt=sse, :embedContent, :batchEmbedContents), the key in a header
    (never in the URL, where access logs would keep it)."""

    counts_tokens = False  # /v1/messages/count_tokens: the proxy's estimate

    def model_url(self, deployment: Deployment) -> str:
        model = deployment.model
        path = model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"
        return f"{deployment.url}/v1beta/{quote(path, safe='/')}"

    def auth_headers(self, deployment: Deployment) -> dict[str, str]:
        return {"x-goog-api-key": deployment.api_key} if deployment.api_key else {}

    def embeddings(self, ctx: LLMContext, deployment: Deployment) -> tuple[str, dict[str, Any]]:
        model = deployment.model.removeprefix("models/")
        return embed_request(ctx.payload, model=model)

    def build(self, ctx: LLMContext, deployment: Deployment) -> UpstreamRequest:
        if ctx.endpoint == "chat":
            body = chat_to_gemini(ctx.payload)
            if deployment.builtin_tools:
                body["tools"] = [*body.get("tools", ()), *builtin_tools(deployment.builtin_tools)]
            method = "streamGenerateContent?alt=sse" if ctx.stream else "generateContent"
        elif ctx.endpoint == "embeddings":
            method, body = self.embeddings(ctx, deployment)
        else:
            raise InvalidRequest(
                f"Gemini deployments serve chat completions and embeddings, not {ctx.endpoint}.",
                code="unsupported_endpoint",
            )
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream" if ctx.stream else "application/json",
            **self.auth_headers(deployment),
        }
        url = f"{self.model_url(deployment)}:{method}"
        return UpstreamRequest("POST", url, headers, orjson.dumps(body))

    def read_response(self, ctx: LLMContext, deployment: Deployment, body: bytes) -> bytes:
        try:
            response = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise bad_response(deployment, "not JSON") from None
        if not isinstance(response, dict):
            raise bad_response(deployment, "not a JSON object")
        try:
            if ctx.endpoint == "embeddings":
                return self.read_embeddings(ctx, deployment, response)
            completion = gemini_to_completion(response, model=deployment.model, created=int(time.time()))
        except ValueError as exc:
            raise bad_response(deployment, str(exc)) from None
        numbers = usage_numbers(response.get("usageMetadata"))
        ctx.usage = Usage(*numbers) if numbers is not None else None
        ctx.finish_reason = completion["choices"][0]["finish_reason"]
        return orjson.dumps(completion)

    def read_embeddings(self, ctx: LLMContext, deployment: Deployment, response: dict[str, Any]) -> bytes:
        # The Gemini API reports no tokens for embeddings: usage stays unknown (limits estimate).
        vectors = gemini_embeddings(response)
        encoding = ctx.payload.get("encoding_format")
        return orjson.dumps(embeddings_list(vectors, model=deployment.model, encoding=encoding))

    def stream(self, ctx: LLMContext, deployment: Deployment) -> GeminiStream:
        return GeminiStream(ctx, deployment)

    def error(
        self, status: int, body: bytes, headers: ResponseHeaders, deployment: Deployment
    ) -> UpstreamError:
        return google_error(status, body, headers, deployment)


def vertex_publishers(deployment: Deployment) -> str:
    """`https://{location}-aiplatform.googleapis.com/v1/projects/{project}/locations/
    {location}/publishers` (`aiplatform.googleapis.com` for `global`, the multi-region
    `aiplatform.us.rep.googleapis.com` for `us` and `eu`); `base_url` replaces the host."""
    location = deployment.location or ""
    if deployment.base_url:
        base = deployment.base_url
    elif location == "global":
        base = "https://aiplatform.googleapis.com"
    elif location in ("us", "eu"):
        base = f"https://aiplatform.{location}.rep.googleapis.com"
    else:
        base = f"https://{location}-aiplatform.googleapis.com"
    project = quote(deployment.project or "", safe="")
    return f"{base}/v1/projects/{project}/locations/{location}/publishers"


def vertex_token(deployment: Deployment) -> dict[str, str]:
    """An access token given as `api_key`; else the deployment's transport adds one."""
    return {"authorization": f"Bearer {deployment.api_key}"} if deployment.api_key else {}


class VertexGeminiProvider(GeminiProvider):
    """Gemini on `vertex`: POST {publishers}/google/models/{model}:generateContent (see
    `vertex_publishers`). The access token is added by the deployment's transport
    (providers/google_auth.py), or is `api_key`."""

    def model_url(self, deployment: Deployment) -> str:
        return f"{vertex_publishers(deployment)}/google/models/{quote(deployment.model, safe='')}"

    def auth_headers(self, deployment: Deployment) -> dict[str, str]:
        return vertex_token(deployment)

    def embeddings(self, ctx: LLMContext, deployment: Deployment) -> tuple[str, dict[str, Any]]:
        return "predict", predict_request(ctx.payload)

    def read_embeddings(self, ctx: LLMContext, deployment: Deployment, response: dict[str, Any]) -> bytes:
        vectors, tokens = predict_embeddings(response)
        ctx.usage = Usage(tokens, 0) if tokens is not None else None
        encoding = ctx.payload.get("encoding_format")
        return orjson.dumps(
            embeddings_list(vectors, model=deployment.model, encoding=encoding, prompt_tokens=tokens or 0)
        )


# google.rpc.ErrorInfo reasons that refuse the deployment's key, which Google answers as 400
# INVALID_ARGUMENT: read as the 401 they mean (errors.UpstreamStatus: the proxy's credentials).
_KEY_REFUSED = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED"})


def _refuses_key(error: dict[str, Any]) -> bool:
    return any(
        isinstance(detail, dict) and detail.get("reason") in _KEY_REFUSED
        for detail in error.get("details") or ()
    )


def _retry_delay(error: dict[str, Any]) -> float | None:
    """google.rpc.RetryInfo's `retryDelay` ("17s", "0.5s") from an error's details."""
    for detail in error.get("details") or ():
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            return parse_retry_after(delay[:-1])
    return None


def google_error(status: int, body: bytes, headers: ResponseHeaders, deployment: Deployment) -> UpstreamError:
    """`{"error": {"code", "message", "status", "details"}}` (or a list holding one) as an
    UpstreamStatus: 429 and every 5xx are retryable, a 4xx is passed on with its message but
    for a refused key (401, 403, or a 400 whose ErrorInfo says API_KEY_INVALID or
    API_KEY_EXPIRED): the deployment's failure, retried elsewhere."""
    message, google_status = f"The upstream answered HTTP {status}.", None
    retry_after = parse_retry_after(headers.get("retry-after"))
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        payload = None
    if isinstance(payload, list) and payload:
        payload = payload[0]
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        if isinstance(error.get("message"), str) and error["message"]:
            message = error["message"]
        if isinstance(error.get("status"), str):
            google_status = error["status"].lower()
        if retry_after is None:
            retry_after = _retry_delay(error)
        if status == 400 and _refuses_key(error):
            status = 401
    return UpstreamStatus(
        status,
        scrub(_GOOGLE_SECRETS.sub("***", message), deployment),
        deployment=deployment.id,
        retry_after=retry_after,
        error_type=_ERROR_TYPES.get(status),
        error_code=google_status,
    )


__all__ = [
    "GeminiProvider",
    "GeminiStream",
    "VertexGeminiProvider",
    "google_error",
    "vertex_publishers",
    "vertex_token",
]
