"""AWS Bedrock Runtime wire format (`provider: bedrock`), behind the OpenAI surface.

Chat goes out as Converse (`POST /model/{id}/converse`) or ConverseStream
(`/converse-stream`, answered in binary event-stream frames), embeddings as InvokeModel of a
Titan or Cohere model (`/model/{id}/invoke`); every request is SigV4-signed by the
deployment's transport just before it is sent (aws_chain.py: the signature covers the body and
the time, and credentials from AWS's chain are fetched off the request path). The translations
are pure (translate/bedrock*.py); signing and framing are botocore's (aws.py).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import orjson

from asgi_llm.config.schema import Deployment
from asgi_llm.context import LLMContext
from asgi_llm.errors import InvalidRequest, UpstreamError, UpstreamStatus
from asgi_llm.providers.aws import (
    AwsConfigError,
    AwsCredentials,
    EventStreamDecoder,
    EventStreamError,
    region_for,
    scrub_credentials,
    static_credentials,
)
from asgi_llm.providers.base import bad_response, parse_retry_after, scrub, usage_from
from asgi_llm.providers.transport import ResponseHeaders, UpstreamRequest
from asgi_llm.translate.bedrock import chat_to_converse
from asgi_llm.translate.bedrock_answer import converse_to_completion
from asgi_llm.translate.bedrock_cache import cache_points_for, has_cache_marks
from asgi_llm.translate.bedrock_embeddings import embedding_family, embeddings_answer, embeddings_request
from asgi_llm.translate.bedrock_json import JSON_TOOL, json_mode
from asgi_llm.translate.bedrock_stream import ConverseToChatStream
from asgi_llm.translate.inbound import chat_form_with_cache_marks

EVENT_STREAM = "application/vnd.amazon.eventstream"

# Bedrock's exception names (x-amzn-errortype) -> (status for the client, error type). Throttling
# and a model not ready are 429s, so the router tries another deployment; a model's own
# failure (424) is a 502 and its timeout (408) a 504, retried too; a quota exhausted is a
# rate limit of this deployment. AWS's signature and key refusals (403) refuse the
# deployment's credentials: retried elsewhere, 502 upstream_auth_failed (errors.UpstreamStatus).
_ERRORS: dict[str, tuple[int | None, str | None]] = {
    "ThrottlingException": (429, None),
    "ModelNotReadyException": (429, None),
    "ServiceQuotaExceededException": (429, None),
    "ServiceUnavailableException": (503, None),
    "InternalServerException": (500, None),
    "ModelErrorException": (502, None),
    "ModelStreamErrorException": (502, None),
    "ModelTimeoutException": (504, None),
    "ValidationException": (None, "invalid_request_error"),
    "ResourceNotFoundException": (None, "invalid_request_error"),
    "AccessDeniedException": (403, None),
    "UnrecognizedClientException": (403, None),
    "InvalidSignatureException": (403, None),
    "IncompleteSignatureException": (403, None),
    "ExpiredTokenException": (403, None),
}


def _new_id() -> str:
    return "chatcmpl-bedrock-" + os.urandom(12).hex()


class BedrockStream:
    """Event-stream frames in (split across reads anywhere), OpenAI chunks out; keeps ctx's
    usage and finish reason current."""

    __slots__ = ("ctx", "done", "_decoder", "_translator", "_counted")
    content_type = EVENT_STREAM  # what ProviderApp expects the answer to be

    def __init__(self, ctx: LLMContext, deployment: Deployment) -> None:
        self.ctx = ctx
        self.done = False
        self._decoder = EventStreamDecoder()
        self._translator = ConverseToChatStream(
            ident=_new_id(),
            model=deployment.model,
            created=int(time.time()),
            include_usage=ctx.include_usage,
            json_tool=JSON_TOOL if json_mode(ctx.payload) else None,
        )
        self._counted = 0

    def feed(self, chunk: bytes) -> bytes:
        translator = self._translator
        out: list[bytes] = []
        try:
            for message in self._decoder.feed(chunk):
                if message.message_type != "event":
                    # An exception (throttlingException, modelStreamErrorException ...) ends it.
                    raise EventStreamError(
                        f"the upstream stream reported {message.event_type[:60] or 'an error'}"
                    )
                try:
                    payload = orjson.loads(message.payload) if message.payload else {}
                    if not isinstance(payload, dict):
                        raise TypeError
                    out.append(translator.event(message.event_type, payload))
                except (orjson.JSONDecodeError, TypeError, AttributeError):
                    raise EventStreamError("a malformed event") from None
        finally:
            ctx = self.ctx
            ctx.streamed_chunks += translator.chunks - self._counted
            self._counted = translator.chunks
            if translator.usage is not None:
                ctx.usage = usage_from({"usage": translator.usage})
            if translator.finish_reason is not None:
                ctx.finish_reason = translator.finish_reason
        self.done = translator.done
        return b"".join(out)


class BedrockProvider:
    """`bedrock` deployments. `environ` stands in for the process environment (tests); the
    environment is read per request, where the deployment names no key or region."""

    counts_tokens = False  # /v1/messages/count_tokens: the proxy's estimate

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ

    def _region(self, deployment: Deployment) -> str:
        environ = os.environ if self._environ is None else self._environ
        try:
            return region_for(deployment, environ)
        except AwsConfigError as exc:
            # This deployment cannot be called; another may: the router moves on.
            raise UpstreamError(str(exc), deployment=deployment.id, code="upstream_misconfigured") from None

    def build(self, ctx: LLMContext, deployment: Deployment) -> UpstreamRequest:
        """The request unsigned: the deployment's transport signs it (aws_chain.py)."""
        region = self._region(deployment)
        base = deployment.base_url or f"https://bedrock-runtime.{region}.amazonaws.com"
        # ':' stays as it is and '/' (an ARN's) is %2F: both go over the wire unchanged by
        # every HTTP client, so the path signed is the path sent.
        model_path = f"{base}/model/{quote(deployment.model, safe=':')}"
        headers = {"content-type": "application/json", "accept": "application/json"}
        if ctx.endpoint == "chat":
            body = chat_to_converse(_chat_payload(ctx), cache_points_for(deployment.model))
            guardrail = guardrail_config(deployment, stream=ctx.stream)
            if guardrail is not None:
                body["guardrailConfig"] = guardrail
            if ctx.stream:
                url, headers["accept"] = f"{model_path}/converse-stream", EVENT_STREAM
            else:
                url = f"{model_path}/converse"
        elif ctx.endpoint == "embeddings":
            family = embedding_family(deployment.model)
            if family is None:
                raise InvalidRequest(
                    f"Bedrock model {deployment.model!r} is not a Titan or Cohere embedding model.",
                    code="unsupported_endpoint",
                )
            body, url = embeddings_request(ctx.payload, family), f"{model_path}/invoke"
        else:
            raise InvalidRequest(
                f"Bedrock deployments serve chat completions and embeddings, not {ctx.endpoint}.",
                code="unsupported_endpoint",
            )
        return UpstreamRequest("POST", url, headers, orjson.dumps(body))

    def read_response(self, ctx: LLMContext, deployment: Deployment, body: bytes) -> bytes:
        try:
            answer = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise bad_response(deployment, "not JSON") from None
        if not isinstance(answer, dict):
            raise bad_response(deployment, "not a JSON object")
        try:
            if ctx.endpoint == "embeddings":
                family = embedding_family(deployment.model) or "titan"
                out = embeddings_answer(answer, ctx.payload, model=deployment.model, family=family)
            else:
                out = converse_to_completion(
                    answer,
                    ident=_new_id(),
                    model=deployment.model,
                    created=int(time.time()),
                    json_tool=JSON_TOOL if json_mode(ctx.payload) else None,
                )
        except ValueError as exc:
            raise bad_response(deployment, str(exc)) from None
        ctx.usage = usage_from(out)  # None when the model did not say (Cohere): limits estimate
        if ctx.endpoint == "chat":
            ctx.finish_reason = out["choices"][0]["finish_reason"]
        return orjson.dumps(out)

    def stream(self, ctx: LLMContext, deployment: Deployment) -> BedrockStream:
        return BedrockStream(ctx, deployment)

    def error(
        self, status: int, body: bytes, headers: ResponseHeaders, deployment: Deployment
    ) -> UpstreamError:
        environ = os.environ if self._environ is None else self._environ
        return bedrock_error(status, body, headers, deployment, static_credentials(deployment, environ))


def _chat_payload(ctx: LLMContext) -> dict[str, Any]:
    """The chat request; for a `/v1/messages` request with `cache_control` marks, with the
    marks that the chat form (what every layer and other providers see) leaves out."""
    call = ctx.messages
    if call is None or not has_cache_marks(call.request):
        return ctx.payload
    marked = chat_form_with_cache_marks(call.request)
    payload = {**ctx.payload, "messages": marked["messages"]}
    if "tools" in marked and "tools" in ctx.payload:
        payload["tools"] = marked["tools"]
    return payload


def guardrail_config(deployment: Deployment, *, stream: bool) -> dict[str, Any] | None:
    """The deployment's guardrail as Converse's guardrailConfig (ConverseStream's takes the
    stream processing mode too)."""
    guardrail = deployment.guardrail
    if guardrail is None:
        return None
    config = {"guardrailIdentifier": guardrail.id, "guardrailVersion": guardrail.version}
    if guardrail.trace is not None:
        config["trace"] = guardrail.trace
    if stream and guardrail.stream_processing_mode is not None:
        config["streamProcessingMode"] = guardrail.stream_processing_mode
    return config


def bedrock_error(
    status: int,
    body: bytes,
    headers: ResponseHeaders,
    deployment: Deployment,
    credentials: AwsCredentials | None = None,
) -> UpstreamError:
    """Bedrock's `{"message": ...}` with its `x-amzn-errortype` header as an UpstreamStatus:
    the exception's name picks the status and type (above), the message is Bedrock's own with
    any credential masked."""
    # "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"
    name = (headers.get("x-amzn-errortype") or "").split(":", 1)[0].strip()
    message = f"The upstream answered HTTP {status}."
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        payload = None
    if isinstance(payload, dict):
        text = payload.get("message", payload.get("Message"))
        if isinstance(text, str) and text:
            message = text
        if not name and isinstance(payload.get("__type"), str):
            name = payload["__type"].rsplit("#", 1)[-1]
    mapped_status, error_type = _ERRORS.get(name, (None, None))
    code = name or None
    if mapped_status is not None and mapped_status != status:
        status = mapped_status
    return UpstreamStatus(
        status,
        scrub(scrub_credentials(message, credentials), deployment),
        deployment=deployment.id,
        retry_after=parse_retry_after(headers.get("retry-after")),
        error_type=error_type,
        error_code=None if status == 429 else code,
    )


__all__ = ["EVENT_STREAM", "BedrockProvider", "BedrockStream", "bedrock_error"]
