"""`POST /v1/messages`: Anthropic's request format in, Anthropic's answers out.

The exchange calls `accept_messages` once, right after parsing the body. The payload becomes
a chat request, so auth, limits, cache and router all see an ordinary chat request with a
model name and any deployment can serve it; the client's send is wrapped (outside the
exchange's own header step) so the chat answer, JSON or SSE, fresh or cached, from any
provider, goes out in Anthropic's form. Errors keep the contract's shape: the anthropic SDK
maps them by status.
"""

from __future__ import annotations

from typing import Any

import orjson

from asgi_llm.context import LLMContext
from asgi_llm.errors import UpstreamError
from asgi_llm.sse import SSEError
from asgi_llm.translate.inbound import messages_to_chat
from asgi_llm.translate.response import completion_to_message
from asgi_llm.translate.stream import ChatToMessagesStream
from asgi_llm.types import Message, Send


def accept_messages(ctx: LLMContext, send: Send) -> Send:
    """Rewrite the parsed Anthropic request into chat form; the send that answers in kind."""
    ctx.payload = messages_to_chat(ctx.payload)
    ctx.endpoint = "chat"
    ctx.inbound_format = "anthropic"
    # The bytes replayed inward must say what the payload says.
    ctx.body = orjson.dumps(ctx.payload)
    return MessagesResponder(ctx, send)


def native_hint(ctx: LLMContext) -> dict[str, Any] | None:
    """What an Anthropic upstream said that the chat form cannot, if it served this answer."""
    hint = ctx.native_hint
    deployment = ctx.deployment
    if (
        isinstance(hint, dict)
        and deployment is not None
        and ctx.cache_status != "hit"
        and hint.get("deployment") == deployment.id
    ):
        return hint
    return None


def _content_type(message: Message) -> bytes:
    for name, value in message.get("headers", ()):
        if name.lower() == b"content-type":
            return bytes(value)
    return b""


class MessagesResponder:
    """Per request: a 200 JSON answer is held whole and rewritten (its length changes), a
    200 event stream is rewritten event by event, anything else passes untouched."""

    __slots__ = ("ctx", "send", "_mode", "_start", "_parts", "_stream")

    def __init__(self, ctx: LLMContext, send: Send) -> None:
        self.ctx = ctx
        self.send = send
        self._mode = "pass"
        self._start: Message | None = None
        self._parts: list[bytes] = []
        self._stream: ChatToMessagesStream | None = None

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self._begin(message)
            if self._mode != "json":
                await self.send(message)
        elif kind != "http.response.body" or self._mode == "pass":
            await self.send(message)
        elif self._mode == "sse":
            await self.send({**message, "body": self._translate_events(message.get("body", b""))})
        else:
            self._parts.append(message.get("body", b""))
            if not message.get("more_body", False):
                await self._send_message()

    def _begin(self, message: Message) -> None:
        content_type = _content_type(message)
        self._parts.clear()
        if message["status"] != 200:
            self._mode = "pass"
        elif content_type.startswith(b"text/event-stream"):
            self._mode = "sse"
            ctx = self.ctx
            self._stream = ChatToMessagesStream(
                input_tokens=ctx.prompt_tokens_estimate, hint=lambda: native_hint(ctx)
            )
        elif content_type.startswith(b"application/json"):
            self._mode, self._start = "json", message
        else:
            self._mode = "pass"

    def _translate_events(self, body: bytes) -> bytes:
        stream = self._stream
        assert stream is not None
        try:
            return stream.feed(body)
        except SSEError:
            # The answer is already flowing: end it in Anthropic's words, as a broken stream.
            return stream.fail("The upstream stream was malformed.")

    async def _send_message(self) -> None:
        start = self._start
        assert start is not None
        status = 200
        try:
            message = completion_to_message(orjson.loads(b"".join(self._parts)), native_hint(self.ctx))
            out = orjson.dumps(message)
        except (ValueError, AttributeError):
            # The upstream answered in a form Anthropic's cannot carry (tool arguments that are
            # not an object, say). The start was held back, so a 502 can still be said.
            error = UpstreamError(
                "The upstream's answer cannot be expressed as an Anthropic message.",
                retryable=False,
                code="bad_upstream_response",
            )
            status = self.ctx.status = error.status
            out = error.body()
        headers = [(k, v) for k, v in start.get("headers", ()) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(out)).encode()))
        await self.send({**start, "status": status, "headers": headers})
        await self.send({"type": "http.response.body", "body": out})
