"""A scriptable fake Anthropic Messages API: a real HTTP server on 127.0.0.1.

    with FakeAnthropic() as claude:
        claude.script(Reply(status=529), Reply(tool_uses=[("get_weather", {"city": "Paris"})]))
        ...  # point an `anthropic` deployment at claude.base_url
        assert claude.requests[0].json["system"] == "Be brief."

The server, the thread, request recording, scripting and disconnect tracking are
FakeUpstream's (tests/fakes/upstream.py); only the answers differ: Anthropic's message
objects, its event stream (message_start, content_block_*, ping, message_delta,
message_stop) and its error shape.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.upstream import (
    FakeUpstream,
    RecordedRequest,
    Send,
    _dumps,
    _encode,
    _pause,
)

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


@dataclass
class Reply:
    """How the fake answers one POST /v1/messages."""

    status: int = 200
    error_message: str = "fake anthropic error"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    text: str = "Hello from the fake Claude."
    chunks: int = 3  # text_delta events the text is cut into
    tool_uses: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    json_pieces: int = 3  # input_json_delta events per tool input
    stop_reason: str | None = None  # default: tool_use when tools were used, else end_turn
    stop_sequence: str | None = None
    thinking: bool = False  # a thinking block first (the proxy must not show it)
    input_tokens: int | None = None  # default: words in the request's messages and system
    output_tokens: int = 7
    chunk_delay_s: float = 0.0
    cut_after: int | None = None  # stream: drop the connection after this many events
    error_after: int | None = None  # stream: an `event: error` (overloaded) after this many
    body: bytes | None = None  # answer these bytes as they are


def _pieces(text: str, count: int) -> list[str]:
    size = max(1, -(-len(text) // max(1, count)))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _words(payload: dict[str, Any]) -> int:
    def words(value: Any) -> int:
        if isinstance(value, str):
            return len(value.split())
        if isinstance(value, list):
            return sum(words(v) for v in value)
        if isinstance(value, dict):
            return words(value.get("text")) + words(value.get("content"))
        return 0

    return words(payload.get("system")) + words(payload.get("messages"))


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: ".encode() + _dumps(data) + b"\n\n"


def message_events(message: dict[str, Any], *, chunks: int = 3, json_pieces: int = 3) -> list[bytes]:
    """A whole message as Anthropic's stream of events, one bytes object per event."""
    start = {
        **message,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**message["usage"], "output_tokens": 1},
    }
    events = [_event("message_start", {"type": "message_start", "message": start})]
    for index, block in enumerate(message["content"]):
        kind = block["type"]
        opened = (
            {"type": "text", "text": ""}
            if kind == "text"
            else ({**block, "input": {}} if kind == "tool_use" else {"type": "thinking", "thinking": ""})
        )
        events.append(
            _event(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": opened},
            )
        )
        if index == 0:
            events.append(_event("ping", {"type": "ping"}))
        if kind == "text":
            deltas = [{"type": "text_delta", "text": p} for p in _pieces(block["text"], chunks)]
        elif kind == "tool_use":
            raw = _dumps(block["input"]).decode()
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in _pieces(raw, json_pieces)]
        else:
            deltas = [
                {"type": "thinking_delta", "thinking": block["thinking"]},
                {"type": "signature_delta", "signature": block["signature"]},
            ]
        events.extend(
            _event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
            for d in deltas
        )
        events.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(
        _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]},
                "usage": {"output_tokens": message["usage"]["output_tokens"]},
            },
        )
    )
    events.append(_event("message_stop", {"type": "message_stop"}))
    return events


def error_body(status: int, message: str) -> bytes:
    kind = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return _dumps({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake"})


class FakeAnthropic(FakeUpstream):
    """Anthropic's Messages API on 127.0.0.1:<free port>; `base_url` ends in /v1."""

    default: Reply  # type: ignore[assignment]

    def __init__(self, name: str = "claude") -> None:
        super().__init__(name)
        self.default = Reply()

    def script(self, *replies: Reply) -> None:  # type: ignore[override]
        super().script(*replies)  # type: ignore[arg-type]

    async def _respond(self, rec: RecordedRequest, send: Send, abort: asyncio.Event) -> None:
        headers = {"content-type": "application/json", "request-id": f"req_{self.name}"}
        if rec.method != "POST" or rec.path != "/v1/messages":
            body = error_body(404, f"Not found: {rec.method} {rec.path}")
            return await self._reply(rec, send, 404, body, headers)
        reply, n = self._next_behavior()
        assert isinstance(reply, Reply)
        if reply.delay_s > 0 and not await _pause(abort, reply.delay_s):
            return
        headers.update((k.lower(), v) for k, v in reply.headers.items())
        if reply.body is not None:
            return await self._reply(rec, send, reply.status, reply.body, headers)
        if reply.status != 200:
            body = error_body(reply.status, reply.error_message)
            return await self._reply(rec, send, reply.status, body, headers)
        payload = rec.json if isinstance(rec.json, dict) else None
        if payload is None or "max_tokens" not in payload:
            body = error_body(400, "max_tokens: Field required")
            return await self._reply(rec, send, 400, body, headers)
        message = self._message(reply, payload, n)
        if payload.get("stream") is not True:
            return await self._reply(rec, send, 200, _dumps(message), headers)
        await self._stream(rec, send, abort, reply, message)

    def _message(self, reply: Reply, payload: dict[str, Any], n: int) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        if reply.thinking:
            content.append({"type": "thinking", "thinking": "Let me think.", "signature": "sig"})
        if reply.text:
            content.append({"type": "text", "text": reply.text})
        for i, (name, arguments) in enumerate(reply.tool_uses):
            content.append(
                {"type": "tool_use", "id": f"toolu_{self.name}_{n}_{i}", "name": name, "input": arguments}
            )
        stop = reply.stop_reason or ("tool_use" if reply.tool_uses else "end_turn")
        prompt = reply.input_tokens if reply.input_tokens is not None else _words(payload)
        return {
            "id": f"msg_{self.name}_{n}",
            "type": "message",
            "role": "assistant",
            "model": str(payload.get("model")),
            "content": content,
            "stop_reason": stop,
            "stop_sequence": reply.stop_sequence,
            "usage": {"input_tokens": prompt, "output_tokens": reply.output_tokens},
        }

    async def _stream(
        self, rec: RecordedRequest, send: Send, abort: asyncio.Event, reply: Reply, message: dict[str, Any]
    ) -> None:
        headers = {
            "content-type": "text/event-stream; charset=utf-8",
            "cache-control": "no-cache",
            "request-id": f"req_{self.name}",
        }
        await self._emit(
            rec, send, {"type": "http.response.start", "status": 200, "headers": _encode(headers)}
        )
        events = message_events(message, chunks=reply.chunks, json_pieces=reply.json_pieces)
        for i, event in enumerate(events):
            if i == reply.cut_after:
                rec.finished_at = time.monotonic()
                return  # no final message: hypercorn closes the connection mid-body
            if i == reply.error_after:
                event = _event(
                    "error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
                )
                rec.finished_at = time.monotonic()
                await self._emit(rec, send, {"type": "http.response.body", "body": event})
                return
            if i and not await _pause(abort, reply.chunk_delay_s):
                return
            await self._emit(rec, send, {"type": "http.response.body", "body": event, "more_body": True})
        rec.finished_at = time.monotonic()
        await self._emit(rec, send, {"type": "http.response.body", "body": b""})
