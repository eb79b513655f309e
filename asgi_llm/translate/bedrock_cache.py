"""Prompt-cache points for Bedrock's Converse: Anthropic's `cache_control` marks as `cachePoint`s.

A client marks where a cacheable prefix ends with `cache_control: {"type": "ephemeral"}`
(optionally `"ttl": "5m" | "1h"`): on a content part or a whole message of a chat request
(the convention LiteLLM and OpenRouter use), or on any block of a `/v1/messages` request
(translate/inbound.py carries them into the chat form made for Bedrock). Converse says the
same with a `{"cachePoint": {"type": "default"}}` block right after the marked one, in
`system`, a message's `content`, or `toolConfig.tools`.

Only models Bedrock caches for take cache points (a model that does not refuses the whole
request); for any other model the marks are dropped, which changes the price, never the answer.
"""

from __future__ import annotations

import re
from typing import Any

from asgi_llm.translate.fields import invalid

# Bedrock's prompt caching (docs.aws.amazon.com/bedrock/latest/userguide/prompt-caching.html):
# Claude 3.5 Haiku, 3.7 Sonnet and the Claude 4 family everywhere; Amazon Nova in system and
# messages, not in tools. Searched anywhere in the id: cross-region profiles and ARNs of system
# inference profiles name the model; an application inference profile's ARN does not.
_CLAUDE = re.compile(r"anthropic\.claude-(3-5-haiku|3-7-sonnet|(sonnet|opus|haiku)-4)")
_NOVA = re.compile(r"amazon\.nova-(micro|lite|pro|premier)")
_TTLS = ("5m", "1h")


class CachePoints:
    """Where a model takes cache points: `messages` (system and turns) and `tools`."""

    __slots__ = ("messages", "tools")

    def __init__(self, *, messages: bool, tools: bool) -> None:
        self.messages = messages
        self.tools = tools


NONE = CachePoints(messages=False, tools=False)


def cache_points_for(model: str) -> CachePoints:
    if _CLAUDE.search(model):
        return CachePoints(messages=True, tools=True)
    if _NOVA.search(model):
        return CachePoints(messages=True, tools=False)
    return NONE


def cache_point(holder: Any, where: str) -> dict[str, Any] | None:
    """The `cachePoint` block for a part, message or tool marked with `cache_control`, or None
    when it is not marked; a malformed mark is a 400 naming it."""
    mark = holder.get("cache_control") if isinstance(holder, dict) else None
    if mark is None:
        return None
    where = f"{where}.cache_control"
    if not isinstance(mark, dict) or mark.get("type") != "ephemeral":
        raise invalid(where, 'must be {"type": "ephemeral"}', "invalid_type")
    point: dict[str, Any] = {"type": "default"}
    ttl = mark.get("ttl")
    if ttl is not None:
        if ttl not in _TTLS:
            raise invalid(f"{where}.ttl", "must be 5m or 1h")
        point["ttl"] = ttl
    return {"cachePoint": point}


def append_point(blocks: list[dict[str, Any]], holder: Any, where: str, enabled: bool) -> None:
    """Add `holder`'s cache point after `blocks` (checked even where it is then dropped); never
    first, nor twice in a row."""
    point = cache_point(holder, where)
    if point is not None and enabled and blocks and "cachePoint" not in blocks[-1]:
        blocks.append(point)


def has_cache_marks(request: dict[str, Any]) -> bool:
    """Whether an Anthropic Messages request marks any block (system, turns, tools)."""
    blocks: list[Any] = []
    for holder in (request.get("system"), request.get("tools")):
        if isinstance(holder, list):
            blocks.extend(holder)
    for turn in request.get("messages") or ():
        content = turn.get("content") if isinstance(turn, dict) else None
        if isinstance(content, list):
            blocks.extend(content)
            # tool_result content may be marked inside too
            for block in content:
                inner = block.get("content") if isinstance(block, dict) else None
                if isinstance(inner, list):
                    blocks.extend(inner)
    return any(isinstance(block, dict) and "cache_control" in block for block in blocks)


__all__ = [
    "NONE",
    "CachePoints",
    "append_point",
    "cache_point",
    "cache_points_for",
    "has_cache_marks",
]
