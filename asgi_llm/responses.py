"""Answers a layer gives by itself, written once: a whole response (JSON, an error, plain
text) or the start of an event stream. Outer layers still see every `http.response.start`
and may add headers to it, so each call sends a fresh header list.
"""

from __future__ import annotations

from collections.abc import Iterable

from asgi_llm.errors import ProxyError
from asgi_llm.types import Send

Header = tuple[bytes, bytes]

JSON: Header = (b"content-type", b"application/json")
SSE_HEADERS: tuple[Header, ...] = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # nginx and friends: pass each event on, do not buffer
)


async def send_json(send: Send, status: int, body: bytes, headers: Iterable[Header] = ()) -> None:
    """A whole JSON answer: content-type, content-length, then `headers`."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [JSON, (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_error(send: Send, error: ProxyError) -> None:
    """An error in the contract's shape, with its own headers (retry-after, ...)."""
    await send_json(send, error.status, error.body(), error.headers)


async def send_response(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    headers: Iterable[Header] = (),
    *,
    content_length: int | None = None,
) -> None:
    """A whole answer of any type; `content_length` for a HEAD answer (the GET body's size)."""
    length = len(body) if content_length is None else content_length
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", str(length).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def start_event_stream(send: Send, headers: Iterable[Header] = ()) -> None:
    """`200` with the SSE headers; the events follow as `http.response.body` messages."""
    await send({"type": "http.response.start", "status": 200, "headers": [*SSE_HEADERS, *headers]})


__all__ = ["JSON", "SSE_HEADERS", "send_error", "send_json", "send_response", "start_event_stream"]
