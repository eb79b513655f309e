"""Lifespan of a stack: the layers' hooks run once, in order; a failed startup is reported
as `lifespan.startup.failed` with its reason (once), never as an app without lifespan."""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware

from asgi_llm import Config, LLMLayer, ProviderApp, build_app, lifespan
from asgi_llm.ratelimit import RateLimitMiddleware
from tests.conftest import mock_model
from tests.waiting import await_until

CONFIG = Config.from_dict({"models": [mock_model()]})


class Hooked(LLMLayer):
    """A layer that records its hooks in `events`; `fail` names a hook that raises."""

    def __init__(self, app: Any, *, config: Any, name: str, events: list[str], fail: str = "") -> None:
        super().__init__(app, config=config)
        self.name, self.events, self.fail = name, events, fail

    async def startup(self) -> None:
        self.events.append(f"{self.name}.startup")
        if self.fail == "startup":
            raise ConnectionError(f"{self.name} cannot reach its store")

    async def shutdown(self) -> None:
        self.events.append(f"{self.name}.shutdown")
        if self.fail == "shutdown":
            raise RuntimeError(f"{self.name} cannot close")


def stack(events: list[str], fail: dict[str, str] | None = None, inner: Any = None) -> Any:
    """a(b(c(d(inner)))): `a` is outermost."""
    app = inner if inner is not None else ProviderApp(config=CONFIG)
    for name in "dcba":
        app = Hooked(app, config=CONFIG, name=name, events=events, fail=(fail or {}).get(name, ""))
    return app


class Server:
    """The server side of the lifespan protocol, as hypercorn and uvicorn speak it."""

    def __init__(self, raise_on_failed: bool = False) -> None:
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []
        self.raise_on_failed = raise_on_failed

    async def receive(self) -> dict[str, Any]:
        return await self.incoming.get()

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)
        if self.raise_on_failed and message["type"].endswith(".failed"):
            raise LookupError(message["message"])  # hypercorn raises LifespanFailureError here

    async def run(self, app: Any, *messages: str) -> None:
        for kind in messages:
            self.incoming.put_nowait({"type": kind})
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
        await asyncio.wait_for(app(scope, self.receive, self.send), timeout=5)

    def kinds(self) -> list[str]:
        return [message["type"] for message in self.sent]


async def test_startups_run_outermost_first_and_shutdowns_in_reverse():
    events: list[str] = []
    server = Server()
    await server.run(stack(events), "lifespan.startup", "lifespan.shutdown")
    assert server.kinds() == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert events == [*(f"{n}.startup" for n in "abcd"), *(f"{n}.shutdown" for n in "dcba")]


async def test_a_failed_startup_sends_one_failed_message_and_unwinds_what_started():
    events: list[str] = []
    server = Server()
    await server.run(stack(events, {"c": "startup"}), "lifespan.startup")  # returns: no exception
    assert server.kinds() == ["lifespan.startup.failed"]
    message = server.sent[0]["message"]
    assert "Hooked startup failed" in message and "ConnectionError: c cannot reach its store" in message
    # d never started; a and b, which had, are shut down again, innermost first.
    assert events == ["a.startup", "b.startup", "c.startup", "b.shutdown", "a.shutdown"]


async def test_when_the_server_raises_on_failed_that_exception_reaches_the_server():
    """hypercorn raises from `send(startup.failed)` and exits only if the app lets it out."""
    events: list[str] = []
    server = Server(raise_on_failed=True)
    with pytest.raises(LookupError, match="b cannot reach its store"):
        await server.run(stack(events, {"b": "startup"}), "lifespan.startup")
    assert server.kinds() == ["lifespan.startup.failed"]
    assert events == ["a.startup", "b.startup", "a.shutdown"]


async def test_a_failing_shutdown_hook_does_not_keep_the_others_open(no_secrets_in_logs):
    events: list[str] = []
    server = Server()
    await server.run(stack(events, {"c": "shutdown"}), "lifespan.startup", "lifespan.shutdown")
    assert server.kinds() == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert events[-4:] == ["d.shutdown", "c.shutdown", "b.shutdown", "a.shutdown"]
    assert any("Hooked shutdown failed" in line for line in no_secrets_in_logs.lines)


async def test_the_lifespan_helper_raises_with_the_reason():
    events: list[str] = []
    with pytest.raises(RuntimeError, match="lifespan startup failed: Hooked startup failed: ConnectionError"):
        async with lifespan(stack(events, {"a": "startup"})):
            pytest.fail("the body must not run after a failed startup")
    assert events == ["a.startup"]


async def test_layers_inside_starlette_send_one_failed_message():
    """Starlette's router answers startup itself and, when `receive` raises, sends a failed
    message of its own (a traceback): only ours, the first, reaches the server."""
    events: list[str] = []
    ran: list[str] = []

    async def app_lifespan(app: Any) -> Any:
        ran.append("starlette startup")
        yield

    app = Starlette(
        lifespan=asynccontextmanager(app_lifespan),
        middleware=[
            Middleware(Hooked, config=CONFIG, name="outer", events=events),
            Middleware(Hooked, config=CONFIG, name="inner", events=events, fail="startup"),
        ],
    )
    server = Server()
    await server.run(app, "lifespan.startup")
    assert server.kinds() == ["lifespan.startup.failed"]
    assert "inner cannot reach its store" in server.sent[0]["message"]
    assert ran == [] and events == ["outer.startup", "inner.startup", "outer.shutdown"]


async def test_a_stack_inside_starlette_starts_with_its_lifespan():
    events: list[str] = []
    app = Starlette(middleware=[Middleware(Hooked, config=CONFIG, name="only", events=events)])
    server = Server()
    await server.run(app, "lifespan.startup", "lifespan.shutdown")
    assert server.kinds() == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert events == ["only.startup", "only.shutdown"]


async def test_the_full_stack_stops_the_config_watcher_when_a_later_layer_fails(tmp_path, monkeypatch):
    path = tmp_path / "proxy.json"
    path.write_text(json.dumps({"models": [mock_model()]}))

    async def broken(self: Any) -> None:
        raise OSError("storage exploded")

    monkeypatch.setattr(RateLimitMiddleware, "startup", broken)
    app = build_app(Config.from_file(path))
    before = set(asyncio.all_tasks())
    server = Server()
    await server.run(app, "lifespan.startup")
    assert server.kinds() == ["lifespan.startup.failed"]
    assert "RateLimitMiddleware startup failed: OSError: storage exploded" in server.sent[0]["message"]
    await await_until(lambda: set(asyncio.all_tasks()) == before, message="the cancelled tasks to end")
    assert app.services.watch._tasks == [] and set(asyncio.all_tasks()) == before  # the watch's tasks: gone


async def test_a_password_in_the_reason_is_redacted(no_secrets_in_logs):
    class Leaky(LLMLayer):
        async def startup(self) -> None:
            raise ValueError("Unable to parse storage uri redis://app:hunter2-secret@redis:6379/0")

    server = Server()
    await server.run(Leaky(ProviderApp(config=CONFIG), config=CONFIG), "lifespan.startup")
    message = server.sent[0]["message"]
    assert "redis://app:***@redis:6379/0" in message and "hunter2" not in message
    assert not any("hunter2" in line for line in no_secrets_in_logs.lines)


async def test_when_the_app_inside_fails_its_startup_the_layers_close_again():
    events: list[str] = []

    @asynccontextmanager
    async def broken_lifespan(app: Any) -> Any:
        raise RuntimeError("the user's database is down")
        yield

    app = Starlette(
        lifespan=broken_lifespan, middleware=[Middleware(Hooked, config=CONFIG, name="only", events=events)]
    )
    server = Server()
    with pytest.raises(RuntimeError, match="database is down"):  # Starlette re-raises its own
        await server.run(app, "lifespan.startup")
    assert server.kinds() == ["lifespan.startup.failed"]
    assert "database is down" in server.sent[0]["message"]
    assert events == ["only.startup", "only.shutdown"]
