"""Named presets for OpenAI-compatible services (`provider: groq`, `mistral`, ...): the OpenAI
wire format with the service's base URL (config/schema/deployments.py, PRESET_BASE_URLS) and its quirks.

A quirk is a field the service refuses with a 400 although it changes nothing in the
answer: it is dropped, with a debug log. A field that does change the answer is sent as
the client wrote it, and the service's own 400 is passed on; unless it holds its neutral
value (`n: 1`, `logprobs: false`), which says nothing and is dropped too. A field the
service spells differently is renamed, and a value it says another way is said its way
(LM Studio's JSON mode is a schema).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from asgi_llm.config.schema import Deployment
from asgi_llm.context import LLMContext, Usage
from asgi_llm.providers.native_responses import NativeResponsesStream
from asgi_llm.providers.openai import OpenAIProvider, OpenAIStream
from asgi_llm.providers.transport import UpstreamRequest

log = logging.getLogger("asgi_llm.providers")

_OPENAI_ONLY = frozenset({"store", "metadata", "service_tier", "prompt_cache_key", "safety_identifier"})


@dataclass(frozen=True, slots=True)
class Preset:
    drop: frozenset[str] = frozenset()  # refused by the service, no effect on the answer
    drop_neutral: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)  # dropped at these values
    rename: Mapping[str, str] = field(default_factory=dict)  # our name -> the service's
    drop_message_names: bool = False  # `messages[].name` refused
    cache_hits: str | None = None  # the usage field that counts prompt-cache reads, if not OpenAI's
    json_object_as_schema: bool = False  # `response_format: json_object` refused, json_schema taken

    def touches(self, payload: Mapping[str, Any]) -> bool:
        return (
            any(name in payload for name in self.drop)
            or any(name in payload for name in self.drop_neutral)
            or any(name in payload for name in self.rename)
            or (self.drop_message_names and any("name" in m for m in payload.get("messages") or ()))
            or (self.json_object_as_schema and _json_object(payload))
        )


def _json_object(payload: Mapping[str, Any]) -> bool:
    response_format = payload.get("response_format")
    return isinstance(response_format, dict) and response_format.get("type") == "json_object"


# JSON mode said as a schema: any JSON object, what `json_object` asks for.
_ANY_OBJECT_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "json_object", "schema": {"type": "object"}},
}


def _neutral(value: Any, neutrals: tuple[Any, ...]) -> bool:
    return value is None or any(
        value == ok and (type(value) is bool) == (type(ok) is bool) for ok in neutrals
    )


# What each service is known to refuse (their OpenAI-compatibility pages, as of 2026).
# Services without known quirks take chat requests as OpenAI does.
PRESETS: dict[str, Preset] = {
    "groq": Preset(
        drop_neutral={"logprobs": (False,), "top_logprobs": (0,), "logit_bias": ({},), "n": (1,)},
        drop_message_names=True,
    ),
    "mistral": Preset(  # extra fields are a 422; usage always ends its streams
        drop=frozenset({"stream_options", "user", *_OPENAI_ONLY}),
        rename={"max_completion_tokens": "max_tokens", "seed": "random_seed"},
    ),
    "cerebras": Preset(
        drop=frozenset({"service_tier"}),
        drop_neutral={
            "frequency_penalty": (0,),
            "presence_penalty": (0,),
            "logit_bias": ({},),
            "parallel_tool_calls": (True,),
        },
    ),
    "deepseek": Preset(cache_hits="prompt_cache_hit_tokens"),
    "together": Preset(),
    "fireworks": Preset(),
    "openrouter": Preset(),  # its `: OPENROUTER PROCESSING` SSE comments are skipped as any comment
    "xai": Preset(  # its reasoning models (grok-4, grok-3-mini) refuse the penalties, even at 0
        drop_neutral={"frequency_penalty": (0,), "presence_penalty": (0,)},
    ),
    "ollama": Preset(),  # ignores what it does not support (n, logit_bias, user): no 400 to avoid
    "vllm": Preset(),
    "lmstudio": Preset(  # "'response_format.type' must be 'json_schema' or 'text'"
        drop_neutral={"response_format": ({"type": "text"},)},
        json_object_as_schema=True,
    ),
}


class PresetProvider(OpenAIProvider):
    """An OpenAI-compatible service by name: chat only in the OpenAI form (a /v1/responses
    request goes out translated), the service's quirks applied to chat and completions."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.preset = PRESETS[name]

    def build(self, ctx: LLMContext, deployment: Deployment) -> UpstreamRequest:
        request = super().build(ctx, deployment)
        preset = self.preset
        if ctx.endpoint not in ("chat", "completions") or not (
            preset.touches(ctx.payload) or (ctx.stream and "stream_options" in preset.drop)
        ):
            return request
        body = self.adjust(orjson.loads(request.body), deployment)
        return dataclasses.replace(request, body=orjson.dumps(body))

    def adjust(self, body: dict[str, Any], deployment: Deployment) -> dict[str, Any]:
        preset = self.preset
        dropped = [name for name in preset.drop if name in body]
        dropped += [n for n, ok in preset.drop_neutral.items() if n in body and _neutral(body[n], ok)]
        for name in dropped:
            del body[name]
        for ours, theirs in preset.rename.items():
            value = body.pop(ours, None)
            if value is not None:  # max_completion_tokens, the newer name, wins over max_tokens
                body[theirs] = value
        if preset.json_object_as_schema and _json_object(body):
            body["response_format"] = _ANY_OBJECT_FORMAT
            dropped.append("response_format json_object (sent as a json_schema of any object)")
        messages = body.get("messages")
        if preset.drop_message_names and isinstance(messages, list):
            if any(isinstance(m, dict) and "name" in m for m in messages):
                body["messages"] = [
                    {k: v for k, v in m.items() if k != "name"} if isinstance(m, dict) else m
                    for m in messages
                ]
                dropped.append("messages[].name")
        if dropped:
            log.debug("%s: %s refuses %s; dropped", deployment.id, self.name, ", ".join(sorted(dropped)))
        return body

    def read_response(self, ctx: LLMContext, deployment: Deployment, body: bytes) -> bytes:
        out = super().read_response(ctx, deployment, body)
        field = self.preset.cache_hits
        if field is not None and field.encode() in body:
            ctx.usage = with_cache_hits(ctx.usage, orjson.loads(body), field)
        return out

    def stream(self, ctx: LLMContext, deployment: Deployment) -> OpenAIStream | NativeResponsesStream:
        field = self.preset.cache_hits
        return CacheHitStream(ctx, field) if field is not None else super().stream(ctx, deployment)


def with_cache_hits(usage: Usage | None, payload: Any, field: str) -> Usage | None:
    """`usage` with the prompt-cache reads a service reports under its own name (DeepSeek's
    `prompt_cache_hit_tokens`, part of its `prompt_tokens`) as `cached_prompt_tokens`."""
    reported = payload.get("usage") if isinstance(payload, dict) else None
    hits = reported.get(field) if isinstance(reported, dict) else None
    if usage is None or type(hits) is not int or hits <= usage.cached_prompt_tokens:
        return usage
    return dataclasses.replace(
        usage, cached_prompt_tokens=min(hits, usage.prompt_tokens - usage.cache_write_tokens)
    )


class CacheHitStream(OpenAIStream):
    """An OpenAI stream whose usage chunk names prompt-cache reads its own way."""

    __slots__ = ("_field",)

    def __init__(self, ctx: LLMContext, field: str) -> None:
        super().__init__(ctx)
        self._field = field

    def _take_usage(self, data: bytes) -> bytes | None:
        out = super()._take_usage(data)
        if self._field.encode() in data:  # the one usage chunk: parsed once more
            self.ctx.usage = with_cache_hits(self.ctx.usage, orjson.loads(data), self._field)
        return out


__all__ = ["PRESETS", "CacheHitStream", "Preset", "PresetProvider", "with_cache_hits"]
