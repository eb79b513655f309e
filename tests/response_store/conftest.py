"""Factories for stored responses, and this package's slice of the real Redis."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from asgi_llm.response_store import StoredResponse

REDIS_DB = 5  # shared with the routing fleet tests; each test keeps to its own prefix

RecordFactory = Callable[..., StoredResponse]


def make_record(
    response_id: str = "resp_0123abcd", namespace: str = "tenant:team-a", **changes: Any
) -> StoredResponse:
    """A stored turn as the gateway writes one: a message answer to one user message."""
    output = [
        {
            "id": "msg_01",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": "Hi there", "annotations": []}],
        }
    ]
    fields: dict[str, Any] = {
        "id": response_id,
        "namespace": namespace,
        "created_at": 1_750_000_000,
        "response": {"id": response_id, "object": "response", "status": "completed", "output": output},
        "input_items": [{"role": "user", "content": [{"type": "input_text", "text": "Hello"}]}],
        "output_items": output,
        "deployment": "openai-mini",
        "upstream_id": None,
    }
    fields.update(changes)
    return StoredResponse(**fields)


@pytest.fixture
def record() -> RecordFactory:
    return make_record


@pytest.fixture
def redis_store_url(redis_available: str, request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """(`redis://.../5`, a key prefix of this test's own); its keys are deleted afterwards."""
    import redis

    name = "".join(ch if ch.isalnum() else "_" for ch in request.node.name[:40])
    prefix = f"test:responses:{name}:{os.urandom(4).hex()}"
    url = f"{redis_available}/{REDIS_DB}"
    yield url, prefix
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
