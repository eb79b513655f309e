"""`POST /v1/messages`: Anthropic's request format in, Anthropic's answers out.

The exchange calls `accept_messages` once, right after parsing the body. The payload becomes
a chat request (`inbound.chat_form`), so auth, limits, cache and router all see an ordinary
chat request with a model name; the request as the client sent it stays in `ctx.messages`
with the client's `anthropic-version` and `anthropic-beta` headers. An attempt on an
Anthropic deployment sends that request as it came (`ctx.messages.native`) and its answer,
JSON or events, is relayed as it came; an attempt anywhere else sends the chat form, and
the chat answer, JSON or SSE, fresh or cached, goes out in Anthropic's form. Errors keep the
contract's shape: the anthropic SDK maps them by status.
"""

from __future__ import annotations

import orjson

from asgi_llm.context import LLMContext, MessagesCall
from asgi_llm.errors import UpstreamError
from asgi_llm.request import check_forbidden, header_values
from asgi_llm.sse import SSEError
from asgi_llm.translate.inbound import chat_form
from asgi_llm.translate.response import completion_to_message
from asgi_llm.translate.stream import ChatToMessagesStream, error_event
from asgi_llm.types import Message, Scope, Send

# The client's headers an Anthropic deployment gets (never its credentials): the API
# version its request is written for, and the beta features it asks for.
FORWARDED_HEADERS = (b"anthropic-version", b"anthropic-beta")
_MAX_HEADER = 2048
_OUR_ERROR = b'data: {"error":'  # ProviderApp's stream_error_event


def messages_call(ctx: LLMContext, scope: Scope, *, count_only: bool = False) -> MessagesCall:
    """Read the Anthropic request: its chat form becomes the payload every layer reads."""
    request = ctx.payload
    check_forbidden(request)  # the request that may go out as it came is checked, not its form
    form, refused = chat_form(request, count_only=count_only)
    headers = {}
    for name in FORWARDED_HEADERS:
        values = [v.decode().strip() for v in header_values(scope, name) if _plain(v)]
        if values:
            headers[name.decode()] = ",".join(values)
    call = ctx.messages = MessagesCall(request, headers, refused)
    ctx.payload = form
    ctx.inbound_format = "anthropic"
    # The bytes replayed inward must say what the payload says.
    ctx.body = orjson.dumps(form)
    return call


def _plain(value: bytes) -> bool:
    """A header value fit to pass on: short, printable ASCII (anything else is dropped)."""
    return len(value) <= _MAX_HEADER and value.isascii() and value.decode().isprintable()


def accept_messages(ctx: LLMContext, scope: Scope, send: Send) -> Send:
    """Rewrite the parsed Anthropic request into chat form; the send that answers in kind."""
    messages_call(ctx, scope)
    ctx.endpoint = "chat"
    return MessagesResponder(ctx, send)


def _content_type(message: Message) -> bytes:
    for name, value in message.get("headers", ()):
        if name.lower() == b"content-type":
            return bytes(value)
    return b""


class MessagesResponder:
    """Per request: a 200 JSON chat answer is held whole and rewritten (its length changes),
    a 200 chat event stream is rewritten event by event; a native answer and anything else
    pass untouched (but for our own stream-error event, said in Anthropic's words)."""

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
        elif self._mode == "native-sse":
            body = message.get("body", b"")
            if body.startswith(_OUR_ERROR):
                body = _native_error(body)
            await self.send({**message, "body": body})
        elif self._mode == "sse":
            await self.send({**message, "body": self._translate_events(message.get("body", b""))})
        else:
            self._parts.append(message.get("body", b""))
            if not message.get("more_body", False):
                await self._send_message()

    def _begin(self, message: Message) -> None:
        content_type = _content_type(message)
        self._parts.clear()
        call = self.ctx.messages
        if message["status"] != 200:
            self._mode = "pass"
        elif call is not None and call.native:
            self._mode = "native-sse" if content_type.startswith(b"text/event-stream") else "pass"
        elif content_type.startswith(b"text/event-stream"):
            self._mode = "sse"
            self._stream = ChatToMessagesStream(input_tokens=self.ctx.prompt_tokens_estimate)
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
            message = completion_to_message(orjson.loads(b"".join(self._parts)))
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


def _native_error(body: bytes) -> bytes:
    """Our stream-error event (a stream cut after its first byte) in Anthropic's words."""
    try:
        message = orjson.loads(body[6:].strip())["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = None
    return error_event(message if isinstance(message, str) else "The upstream stream was interrupted.")


__all__ = ["FORWARDED_HEADERS", "MessagesResponder", "accept_messages", "messages_call"]
