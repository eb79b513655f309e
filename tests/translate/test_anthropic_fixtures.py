"""Golden fixtures for thinking and prompt-cache usage across OpenAI chat and Anthropic
Messages, both ways (tests/translate/fixtures/anthropic/*.json): each file holds a
description, its direction, the input and the exact expected output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from asgi_llm.sse import SSEDecoder, event_data
from asgi_llm.translate import (
    ChatToMessagesStream,
    MessagesToChatStream,
    chat_to_messages,
    completion_to_message,
    message_to_completion,
    messages_to_chat,
)

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"
CREATED = 1700000000


def _events(items: list[dict[str, Any]]) -> bytes:
    return b"".join(
        b"event: " + item["type"].encode() + b"\ndata: " + orjson.dumps(item) + b"\n\n" for item in items
    )


def _chunks(sse: bytes) -> list[Any]:
    datas = (event_data(event) for event in SSEDecoder().feed(sse))
    return [orjson.loads(d) if d != b"[DONE]" else "[DONE]" for d in datas if d is not None]


def _named_events(sse: bytes) -> list[dict[str, Any]]:
    out = []
    for event in SSEDecoder().feed(sse):
        name, data = event.split(b"\n")
        out.append({"event": name.removeprefix(b"event: ").decode(), "data": orjson.loads(data[6:])})
    return out


def translate(fixture: dict[str, Any]) -> Any:
    given = fixture["input"]
    direction = fixture["direction"]
    if direction == "chat_to_messages":
        return chat_to_messages(given, model="claude-sonnet-4-5")
    if direction == "messages_to_chat":
        return messages_to_chat(given)
    if direction == "message_to_completion":
        return message_to_completion(given, created=CREATED)
    if direction == "completion_to_message":
        return completion_to_message(given)
    if direction == "messages_stream_to_chat":
        return _chunks(MessagesToChatStream(created=CREATED, include_usage=True).feed(_events(given)))
    if direction == "chat_stream_to_messages":
        sse = b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in given) + b"data: [DONE]\n\n"
        return _named_events(ChatToMessagesStream(input_tokens=fixture["input_tokens_estimate"]).feed(sse))
    raise AssertionError(f"unknown direction {direction}")


@pytest.mark.parametrize("name", sorted(path.stem for path in FIXTURES.glob("*.json")))
def test_golden(name):
    fixture = json.loads((FIXTURES / f"{name}.json").read_text())
    assert fixture["description"]
    assert translate(fixture) == fixture["output"]


def test_every_direction_has_fixtures():
    directions = {json.loads(p.read_text())["direction"] for p in FIXTURES.glob("*.json")}
    assert directions == {
        "chat_to_messages",
        "messages_to_chat",
        "message_to_completion",
        "completion_to_message",
        "messages_stream_to_chat",
        "chat_stream_to_messages",
    }
