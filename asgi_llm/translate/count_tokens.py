"""`POST /v1/messages/count_tokens`: Anthropic's token counting, through the layers.

The exchange calls `accept_count_tokens` once: the request is read as `/v1/messages` reads
one (its chat form for auth and the router, the request as it came in `ctx.messages`), and
the endpoint is `count_tokens`, which limits and the cache leave alone (it generates
nothing). ProviderApp asks an Anthropic deployment, or answers `estimate_input_tokens`
with `x-llm-token-estimate: true` for a deployment that has no such API.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from asgi_llm.context import LLMContext
from asgi_llm.translate.endpoint import messages_call
from asgi_llm.types import Scope, Send

CHARS_PER_TOKEN = 4
IMAGE_TOKENS = 1600  # Anthropic's own estimate for an image at its largest size
PAGE_TOKENS = 1600  # a PDF page: its text and its image


def accept_count_tokens(ctx: LLMContext, scope: Scope, send: Send) -> Send:
    messages_call(ctx, scope, count_only=True)
    ctx.endpoint = "count_tokens"
    return send


def estimate_input_tokens(request: dict[str, Any]) -> int:
    """About how many input tokens a Messages request is: 4 characters a token for text
    (tool definitions and inputs as JSON), 1600 tokens an image or a PDF page."""
    chars, extra = 0, 0
    stack: list[Any] = [request.get("system"), request.get("messages"), request.get("tools")]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            chars += len(item)
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            kind = item.get("type")
            if kind == "image":
                extra += IMAGE_TOKENS
            elif kind == "document":
                extra += _document_tokens(item.get("source"))
            elif kind == "tool_use":
                chars += len(orjson.dumps(item.get("input", {})))
            elif "input_schema" in item:  # a tool definition
                chars += len(orjson.dumps(item))
            else:
                stack.extend(item.get(name) for name in ("text", "thinking", "content"))
    return chars // CHARS_PER_TOKEN + extra + 1


def _document_tokens(source: Any) -> int:
    if not isinstance(source, dict):
        return 0
    if source.get("type") == "text" and isinstance(source.get("data"), str):
        return len(source["data"]) // CHARS_PER_TOKEN
    if source.get("type") == "base64" and isinstance(source.get("data"), str):
        try:
            pdf = base64.b64decode(source["data"], validate=False)
        except (binascii.Error, ValueError):
            return PAGE_TOKENS
        pages = pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages")
        return max(1, pages) * PAGE_TOKENS
    return PAGE_TOKENS


__all__ = ["accept_count_tokens", "estimate_input_tokens"]
