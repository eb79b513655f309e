"""Answers written once (asgi_llm/responses.py) and the error object they carry (errors.py)."""

from __future__ import annotations

from typing import Any

import orjson

from asgi_llm.errors import RateLimited, error_body, error_object
from asgi_llm.providers.app import stream_error_event
from asgi_llm.responses import SSE_HEADERS, send_error, send_json, send_response, start_event_stream


class Sent:
    """An ASGI `send` that keeps what it was given."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def __call__(self, message: Any) -> None:
        self.messages.append(message)

    @property
    def start(self) -> dict[str, Any]:
        return self.messages[0]


async def test_send_json_sets_type_and_length_before_extra_headers():
    sent = Sent()
    await send_json(sent, 201, b'{"a":1}', [(b"x-extra", b"1")])
    assert sent.messages == [
        {
            "type": "http.response.start",
            "status": 201,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", b"7"),
                (b"x-extra", b"1"),
            ],
        },
        {"type": "http.response.body", "body": b'{"a":1}'},
    ]


async def test_send_error_carries_the_errors_status_headers_and_body():
    sent = Sent()
    error = RateLimited("Slow down.", retry_after=2.5)
    await send_error(sent, error)
    assert sent.start["status"] == 429
    assert (b"retry-after", b"3") in sent.start["headers"]
    body = orjson.loads(sent.messages[1]["body"])
    assert body == {
        "error": {
            "message": "Slow down.",
            "type": "rate_limit_error",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }


async def test_send_response_for_head_keeps_the_get_length():
    sent = Sent()
    await send_response(sent, 200, b"", b"text/plain", content_length=42)
    assert sent.start["headers"][:2] == [(b"content-type", b"text/plain"), (b"content-length", b"42")]
    assert sent.messages[1]["body"] == b""


async def test_every_stream_start_gets_its_own_header_list():
    first, second = Sent(), Sent()
    await start_event_stream(first)
    first.start["headers"].append((b"x-request-id", b"r1"))  # what an outer layer does
    await start_event_stream(second, [(b"x-more", b"1")])
    assert second.start["headers"] == [*SSE_HEADERS, (b"x-more", b"1")]
    assert second.start["status"] == 200 and "more_body" not in second.start


def test_error_body_key_order_is_the_contracts():
    assert error_body("m", "t", "c") == b'{"error":{"message":"m","type":"t","param":null,"code":"c"}}'
    assert list(error_object("m", "t", None, "model")) == ["message", "type", "param", "code"]


def test_stream_error_event_bytes_on_the_wire():
    assert stream_error_event("The upstream stream timed out.", "stream_timeout") == (
        b'data: {"error":{"message":"The upstream stream timed out.","type":"upstream_error",'
        b'"param":null,"code":"stream_timeout"}}\n\n'
    )
