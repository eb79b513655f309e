"""A `/v1/messages` request sent to an Anthropic deployment as the client sent it.

The body goes out unchanged but for `model` (the deployment's name), with the client's
`anthropic-version` and `anthropic-beta` headers and the deployment's own key: thinking
blocks and their signatures, `cache_control`, documents, citations and server tools reach
Anthropic untouched. The answer comes back untouched too: a message is relayed as its
bytes, a stream event by event as its bytes (whole events only, so an error event can be
added cleanly), and usage is read on the way (message_start, then message_delta).
"""

from __future__ import annotations

from typing import Any

import orjson

from asgi_llm.config.schema import Deployment
from asgi_llm.context import LLMContext, MessagesCall, Usage
from asgi_llm.providers.base import SSE, bad_response
from asgi_llm.sse import SSEDecoder, SSEError
from asgi_llm.translate.response import cache_writes, finish_reason_for
from asgi_llm.translate.stream import UpstreamErrorEvent, merge_usage

# Events held back until the first that carries the answer, so an early error event (an
# `overloaded_error` right after message_start) can still fail over.
_PREAMBLE = frozenset({b"message_start", b"ping", b"content_block_start"})


def usage_from_anthropic(usage: Any) -> Usage | None:
    """An Anthropic usage object as our Usage (docs/observability.md, "Token kinds")."""
    if not isinstance(usage, dict):
        return None
    counts = [usage.get(k) or 0 for k in ("input_tokens", "cache_read_input_tokens", "output_tokens")]
    if any(type(v) is not int or v < 0 for v in counts):
        return None
    fresh, read, output = counts
    written, hour = cache_writes(usage)
    return Usage(fresh + read + written, output, read, 0, written, hour)


def native_body(call: MessagesCall, deployment: Deployment) -> bytes:
    # Re-serialized from the parsed object, as every upstream body is: what was checked is
    # what is sent (a body with duplicate keys says one thing to us and to the upstream).
    return orjson.dumps({**call.request, "model": deployment.model})


def read_native(ctx: LLMContext, deployment: Deployment, body: bytes) -> bytes:
    """A whole message (or a count_tokens answer): relayed as it is; usage kept."""
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise bad_response(deployment, "not JSON") from None
    if ctx.endpoint == "count_tokens":
        if not isinstance(answer, dict) or type(answer.get("input_tokens")) is not int:
            raise bad_response(deployment, "no input_tokens")
        return body
    if not isinstance(answer, dict) or answer.get("type") != "message":
        raise bad_response(deployment, "not a message")
    ctx.usage = usage_from_anthropic(answer.get("usage"))
    ctx.finish_reason = finish_reason_for(answer.get("stop_reason"))
    return body


def _name(event: bytes) -> bytes:
    """An event's name: its `event:` line, else the `type` in its data."""
    if event.startswith(b"event:"):
        return event[6 : event.find(b"\n") if b"\n" in event else None].strip()
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            try:
                data = orjson.loads(line[5:])
            except orjson.JSONDecodeError:
                raise SSEError("an event that is not JSON") from None
            kind = data.get("type") if isinstance(data, dict) else None
            return kind.encode() if isinstance(kind, str) else b""
    return b""


def _data(event: bytes) -> dict[str, Any]:
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            try:
                data = orjson.loads(line[5:])
            except orjson.JSONDecodeError:
                raise SSEError("an event that is not JSON") from None
            if isinstance(data, dict):
                return data
    raise SSEError("an event without a JSON object")


def _complete(buffer: bytes) -> int:
    """Where the last whole event in `buffer` ends (0: none yet)."""
    ends = [buffer.rfind(b"\n\n") + 2]
    if b"\r" in buffer:
        ends += (buffer.rfind(b"\n\r\n") + 3, buffer.rfind(b"\r\r") + 2)
    found = [end for end, width in zip(ends, (2, 3, 2), strict=False) if end >= width]
    return max(found, default=0)


class NativeMessagesStream:
    """Relays Anthropic's event stream as its bytes, whole events at a time.

    Usage: message_start's input side goes to `ctx.stream_start_usage` (for a stream cut
    before its end); the whole usage is set once message_delta says it (message_start's is
    never taken as final: some servers send 0/0 there). Content deltas (text, thinking, tool
    input; not signatures) count as delivered content events. An error event after the
    first bytes went out is relayed as it came and ends the stream as failed.
    """

    content_type = SSE
    __slots__ = ("ctx", "done", "_decoder", "_pending", "_held", "_released", "_usage")

    def __init__(self, ctx: LLMContext) -> None:
        self.ctx = ctx
        self.done = False
        self._decoder = SSEDecoder()
        self._pending = b""  # the start of an event not yet whole
        self._held: list[bytes] = []  # whole events not sent yet (before the first content)
        self._released = False
        self._usage: dict[str, Any] = {}

    def feed(self, chunk: bytes) -> bytes:
        buffer = self._pending + chunk if self._pending else chunk
        end = _complete(buffer)
        self._pending = buffer[end:]
        if len(self._pending) > 1 << 20:
            raise SSEError("an SSE event exceeds the size limit")
        if not end:
            return b""
        whole = buffer[:end]
        for event in self._decoder.feed(whole):
            if self.done:
                break
            self._event(event)
        if not self._released:
            self._held.append(whole)
            return b""
        if self._held:
            whole = b"".join((*self._held, whole))
            self._held.clear()
        return whole

    def _event(self, event: bytes) -> None:
        name = _name(event)
        ctx = self.ctx
        if name == b"content_block_delta":
            if b'"signature_delta"' not in event:
                ctx.streamed_chunks += 1
        elif name == b"message_start":
            message = _data(event).get("message")
            merge_usage(self._usage, message.get("usage") if isinstance(message, dict) else None)
            ctx.stream_start_usage = usage_from_anthropic(self._usage)
        elif name == b"message_delta":
            data = _data(event)
            merge_usage(self._usage, data.get("usage"))
            ctx.usage = usage_from_anthropic(self._usage)
            delta = data.get("delta")
            if isinstance(delta, dict):
                ctx.finish_reason = finish_reason_for(delta.get("stop_reason"))
        elif name == b"message_stop":
            self.done = True
        elif name == b"error":
            if not self._released:
                raise UpstreamErrorEvent("the upstream stream reported an error")
            error = _data(event).get("error")
            kind = error.get("type") if isinstance(error, dict) else None
            ctx.stream_failure = kind if isinstance(kind, str) else "upstream_error"
            self.done = True
        if name not in _PREAMBLE:
            self._released = True


__all__ = ["NativeMessagesStream", "native_body", "read_native", "usage_from_anthropic"]
