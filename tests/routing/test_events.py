"""The router's log lines (asgi_llm/routing/events.py): what an operator sees of an outage."""

from __future__ import annotations

import asyncio
import logging

import pytest

from asgi_llm.errors import UpstreamStatus, UpstreamTimeout
from asgi_llm.routing.events import RouterEvents
from tests.fakes.upstream import Behavior, FakeUpstream
from tests.routing.test_middleware import USER, dep


async def chat(client, request_id: str | None = None):
    headers = {"x-request-id": request_id} if request_id else {}
    return await client.post("/v1/chat/completions", json={"model": "m", "messages": USER}, headers=headers)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def router_lines(caplog):
    return [r for r in caplog.records if r.name == "asgi_llm.routing"]


def test_lines_are_capped_per_deployment_and_report_what_was_held_back(caplog):
    clock = Clock()
    events = RouterEvents(burst=3, interval_s=10, clock=clock)
    caplog.set_level(logging.WARNING, "asgi_llm.routing")
    error = UpstreamStatus(500, "boom", deployment="a")
    for i in range(50):
        events.attempt_failed(f"r{i}", "a", 1, error, "failing over to b")
    events.attempt_failed("other", "b", 1, error, "no attempts left")  # its own allowance
    lines = router_lines(caplog)
    assert len(lines) == 4
    clock.now = 10.0
    events.attempt_failed("later", "a", 2, error, "retrying it")
    last = router_lines(caplog)[-1].getMessage()
    assert "later" in last and "47 similar lines held back" in last


def test_an_attempt_line_names_request_deployment_attempt_status_and_next_step(caplog):
    caplog.set_level(logging.WARNING, "asgi_llm.routing")
    events = RouterEvents()
    events.attempt_failed("req-1", "dep-a", 2, UpstreamStatus(503, "sk-secret in text"), "failing over to b")
    events.attempt_failed(
        "req-2", "dep-a", 1, UpstreamTimeout("slow", code="first_token_timeout"), "retrying it"
    )
    first, second = router_lines(caplog)
    assert first.levelno == logging.WARNING
    assert first.fields == {  # type: ignore[attr-defined]
        "request_id": "req-1",
        "deployment": "dep-a",
        "attempt": 2,
        "error": "UpstreamStatus",
        "status": 503,
        "code": "upstream_error",
        "next": "failing over to b",
    }
    assert "sk-secret" not in first.getMessage()  # the upstream's own text is never logged
    assert "UpstreamTimeout" in second.getMessage() and "first_token_timeout" in second.getMessage()


@pytest.fixture
def failing():
    with FakeUpstream("down") as down, FakeUpstream("up") as up:
        down.default = Behavior(status=500)
        yield down, up


async def test_failover_cooldown_and_recovery_are_logged(asgi_client, failing, caplog):
    caplog.set_level(logging.INFO, "asgi_llm.routing")
    down, up = failing
    client = asgi_client(
        {
            "models": [{"name": "m", "deployments": [dep(down, "down"), dep(up, "up")]}],
            "routing": {"retries": 1, "cooldown": {"failures": 2, "window_s": 60, "seconds": 0.2}},
        }
    )
    first = await chat(client, "req-one")
    assert first.status_code == 200
    (line,) = [r for r in router_lines(caplog) if "req-one" in r.getMessage()]
    assert line.fields["deployment"] == "down" and line.fields["status"] == 500  # type: ignore[attr-defined]
    assert line.fields["next"] == "failing over to up"  # type: ignore[attr-defined]
    await chat(client)
    assert any("down cooling down" in r.getMessage() for r in router_lines(caplog))
    down.default = Behavior()
    await asyncio.sleep(0.25)  # the 0.2 s cooldown runs out
    for _ in range(3):
        await chat(client)
    assert any("down answered again" in r.getMessage() for r in router_lines(caplog))


async def test_a_request_that_runs_out_of_attempts_is_logged(asgi_client, failing, caplog):
    caplog.set_level(logging.WARNING, "asgi_llm.routing")
    down, _ = failing
    client = asgi_client(
        {"models": [{"name": "m", "deployments": [dep(down, "down")]}], "routing": {"retries": 1}}
    )
    assert (await chat(client, "req-x")).status_code == 502
    messages = [r.getMessage() for r in router_lines(caplog) if "req-x" in r.getMessage()]
    assert len(messages) == 3 and "every attempt for model m failed (2 attempts)" in messages[-1]
