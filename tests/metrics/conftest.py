"""Helpers for the metrics tests: a fast direct ASGI call and a Prometheus text parser."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from asgi_llm import build_app
from tests.conftest import shut_down_all


async def call(
    app: Any,
    path: str,
    payload: Any = None,
    *,
    method: str = "POST",
    headers: tuple[tuple[bytes, bytes], ...] = (),
) -> tuple[int, bytes]:
    """One request straight into an ASGI app (no HTTP client): the status and the body."""
    body = b"" if payload is None else orjson.dumps(payload)
    pending = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop()
        await asyncio.Event().wait()  # the client never leaves
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "server": ("proxy.test", 80),
        "client": ("127.0.0.1", 5000),
        "headers": [(b"host", b"proxy.test"), (b"content-type", b"application/json"), *headers],
    }
    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def chat(model: str = "m1", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hello"}], **extra}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of a Prometheus exposition."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels`."""
    total = 0.0
    for (sample, sample_labels), v in samples(text).items():
        if sample == name and set(labels.items()) <= set(sample_labels):
            total += v
    return total


async def scrape(app: Any, path: str = "/metrics") -> str:
    status, body = await call(app, path, method="GET")
    assert status == 200, body
    return body.decode()


@pytest.fixture
async def make_app() -> AsyncIterator[Callable[..., Any]]:
    """Factory: build_app(config) (or wrap an app) and give it a lifespan shutdown at teardown,
    so the pools its layers opened are closed."""
    made: list[Any] = []

    def make(config: Any = None, *, app: Any = None) -> Any:
        built = app if app is not None else build_app(config)
        made.append(built)
        return built

    yield make
    await shut_down_all(made)
