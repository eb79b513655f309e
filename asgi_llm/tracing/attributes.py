"""What a span says about a request or an attempt, in the OpenTelemetry GenAI semantic
conventions (`gen_ai.*`) plus asgi-llm's own (`asgi_llm.*`): plain dicts, read off the
LLMContext once, when the span ends. No OpenTelemetry import here.

Never in an attribute: a credential (client key, provider key, export headers), the key's
id, a response id (a capability) or, unless `tracing.capture_content`, any prompt text.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from asgi_llm.config.schema import Deployment
from asgi_llm.context import LLMContext, Usage
from asgi_llm.errors import ProxyError, UpstreamStatus
from asgi_llm.redact import redact_url_passwords
from asgi_llm.request import ENDPOINTS

Attributes = dict[str, Any]

# gen_ai.operation.name by the endpoint a request ends up as (the Anthropic Messages and
# Responses surfaces are chat requests from the exchange inward). Token counting has no
# semconv operation: it keeps its own name.
OPERATIONS = {
    "chat": "chat",
    "completions": "text_completion",
    "embeddings": "embeddings",
    "count_tokens": "count_tokens",
}
# gen_ai.provider.name: the semconv's well-known values; any other provider is named as in
# the config (`together`, `ollama`, `openai-compatible`, `mock`, ...), as the semconv allows.
PROVIDERS = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "vertex": "gcp.vertex_ai",
    "bedrock": "aws.bedrock",
    "groq": "groq",
    "mistral": "mistral_ai",
    "deepseek": "deepseek",
    "xai": "x_ai",
}
# http.route of every route (the path templates; a model or response id is never in one).
ROUTES = {name: path for path, (name, _) in ENDPOINTS.items()} | {
    "models.one": "/v1/models/{model}",
    "responses.get": "/v1/responses/{response_id}",
    "responses.delete": "/v1/responses/{response_id}",
    "responses.input_items": "/v1/responses/{response_id}/input_items",
    "responses.cancel": "/v1/responses/{response_id}/cancel",
}
# Request fields copied as gen_ai.request.* when the client set them (numbers only).
PARAMETERS = (
    ("max_tokens", "gen_ai.request.max_tokens"),
    ("max_completion_tokens", "gen_ai.request.max_tokens"),
    ("max_output_tokens", "gen_ai.request.max_tokens"),
    ("temperature", "gen_ai.request.temperature"),
    ("top_p", "gen_ai.request.top_p"),
    ("frequency_penalty", "gen_ai.request.frequency_penalty"),
    ("presence_penalty", "gen_ai.request.presence_penalty"),
    ("seed", "gen_ai.request.seed"),
    ("n", "gen_ai.request.choice.count"),
)
MAX_MODEL_CHARS = 256  # a model name the client wrote, refused or not
MAX_CONTENT_CHARS = 32 * 1024  # captured messages (capture_content), per span
_CODE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


def provider_name(provider: str) -> str:
    return PROVIDERS.get(provider, provider)


def route_template(name: str, target: str | None, prefix: str) -> str:
    key = "models.one" if name == "models" and target is not None else name
    return prefix + ROUTES.get(key, "/" + name)


def operation(ctx: LLMContext) -> str | None:
    return OPERATIONS.get(ctx.endpoint)


def span_name(ctx: LLMContext, fallback: str) -> str:
    """`{gen_ai.operation.name} {gen_ai.request.model}` (`chat gpt-4o-mini`) for a GenAI
    request; the HTTP name (`GET /v1/models`) for the others."""
    op = operation(ctx)
    if op is None:
        return fallback
    model = _model_asked(ctx)
    return f"{op} {model}" if model else op


def attempt_span_name(ctx: LLMContext, deployment: Deployment) -> str:
    """`chat gpt-4o-mini-2024-07-18`: the operation and the model the upstream is asked for."""
    return f"{operation(ctx) or 'upstream'} {deployment.model}"


def request_attributes(ctx: LLMContext, capture_content: bool) -> Attributes:
    """The request span's attributes once the request is over."""
    attributes: Attributes = {"asgi_llm.request_id": ctx.request_id, "asgi_llm.stream": ctx.stream}
    op = operation(ctx)
    status = ctx.status
    error = ctx.error
    if status is None and error is not None:
        status = error.status
    if status is not None:
        attributes["http.response.status_code"] = status
    if op is not None:
        attributes["gen_ai.operation.name"] = op
        model = _model_asked(ctx)
        if model:
            attributes["gen_ai.request.model"] = model
        attributes.update(parameters(ctx.payload))
        if capture_content:
            attributes.update(content(ctx.payload))
    principal = ctx.principal
    if principal is not None and principal.tenant is not None:
        attributes["asgi_llm.tenant"] = principal.tenant
    if ctx.cache_status is not None:
        attributes["asgi_llm.cache"] = ctx.cache_status
        if ctx.cache_kind is not None:
            attributes["asgi_llm.cache_kind"] = ctx.cache_kind
    deployment = ctx.deployment
    if deployment is not None:
        attributes["gen_ai.provider.name"] = provider_name(deployment.provider)
        attributes["gen_ai.response.model"] = deployment.model
        attributes["asgi_llm.deployment"] = deployment.id
        attributes["asgi_llm.attempts"] = ctx.attempts
    if ctx.fallback_model is not None:
        attributes["asgi_llm.fallback_model"] = ctx.fallback_model
    attributes.update(outcome(ctx))
    if ctx.cost_usd is not None:
        attributes["asgi_llm.cost_usd"] = ctx.cost_usd
    if ctx.disconnected:
        attributes["asgi_llm.client_gone"] = True
    if error is not None:
        attributes["error.type"] = _error_code(error)
    elif ctx.stream_failure is not None:
        attributes["error.type"] = _code(ctx.stream_failure)
    return attributes


def attempt_attributes(ctx: LLMContext, deployment: Deployment) -> Attributes:
    """The attempt span's attributes when it starts."""
    attributes: Attributes = {
        "gen_ai.provider.name": provider_name(deployment.provider),
        "gen_ai.request.model": deployment.model,
        "asgi_llm.deployment": deployment.id,
        "asgi_llm.attempt": ctx.attempts,
        "asgi_llm.request_id": ctx.request_id,
    }
    op = operation(ctx)
    if op is not None:
        attributes["gen_ai.operation.name"] = op
    if ctx.fallback_model is not None:
        attributes["asgi_llm.fallback_model"] = ctx.fallback_model
    attributes.update(parameters(ctx.payload))
    return attributes


def attempt_result(ctx: LLMContext, deployment: Deployment, error: BaseException | None) -> Attributes:
    """The attempt span's attributes when it ends (usage is per attempt: ProviderApp resets it)."""
    attributes: Attributes = {"gen_ai.response.model": deployment.model}
    attributes.update(outcome(ctx))
    if error is not None:
        if isinstance(error, UpstreamStatus):
            attributes["http.response.status_code"] = error.status
            attributes["error.type"] = str(error.status)
        elif isinstance(error, ProxyError):
            attributes["error.type"] = _error_code(error)
        else:  # cancelled: the client left, or the server is stopping
            attributes["error.type"] = "client_gone" if ctx.disconnected else type(error).__name__
    elif ctx.stream_failure is not None:
        attributes["error.type"] = _code(ctx.stream_failure)
    return attributes


def outcome(ctx: LLMContext) -> Attributes:
    attributes: Attributes = {}
    if ctx.finish_reason is not None:
        attributes["gen_ai.response.finish_reasons"] = (ctx.finish_reason,)
    if ctx.usage is not None:
        attributes.update(usage_attributes(ctx.usage))
    return attributes


def usage_attributes(usage: Usage) -> Attributes:
    """Input tokens count every prompt token, cache reads and writes included (the semconv's
    and context.Usage's reading alike); the details only when not 0."""
    attributes: Attributes = {
        "gen_ai.usage.input_tokens": usage.prompt_tokens,
        "gen_ai.usage.output_tokens": usage.completion_tokens,
    }
    if usage.cached_prompt_tokens:
        attributes["gen_ai.usage.cache_read.input_tokens"] = usage.cached_prompt_tokens
    if usage.cache_write_tokens:
        attributes["gen_ai.usage.cache_creation.input_tokens"] = usage.cache_write_tokens
    if usage.reasoning_tokens:
        attributes["gen_ai.usage.reasoning.output_tokens"] = usage.reasoning_tokens
    return attributes


def parameters(payload: dict[str, Any]) -> Attributes:
    attributes: Attributes = {}
    for field, name in PARAMETERS:
        value = payload.get(field)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and name not in attributes:
            attributes[name] = value
    return attributes


def content(payload: dict[str, Any]) -> Attributes:
    """The request's messages (or prompt, or input) as JSON, bounded, URL passwords redacted."""
    for field in ("messages", "prompt", "input"):
        value = payload.get(field)
        if value is not None:
            text = redact_url_passwords(orjson.dumps(value).decode())
            return {"gen_ai.input.messages": text[:MAX_CONTENT_CHARS]}
    return {}


def _model_asked(ctx: LLMContext) -> str | None:
    model = ctx.model if operation(ctx) is not None else None  # elsewhere it may be a response id
    return model[:MAX_MODEL_CHARS] if model else None


def _error_code(error: ProxyError) -> str:
    return _code(error.code) if error.code else error.type


def _code(code: str) -> str:
    """An error code as a bounded token (an upstream's code is its own text)."""
    return code if _CODE.fullmatch(code) else "_OTHER"


__all__ = [
    "OPERATIONS",
    "PROVIDERS",
    "attempt_attributes",
    "attempt_result",
    "attempt_span_name",
    "provider_name",
    "request_attributes",
    "route_template",
    "span_name",
    "usage_attributes",
]
