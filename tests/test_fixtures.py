"""The shared fixtures' teardown: only an app without lifespan is let off; every other
failure of the lifespan shutdown fails the test that made the app."""

from __future__ import annotations

from typing import Any

import pytest

from asgi_llm import Config, LLMLayer, ProviderApp
from tests.conftest import mock_model, run_lifespan_shutdown, shut_down_all

CONFIG = Config.from_dict({"models": [mock_model()]})


class Hooked(LLMLayer):
    """A layer that records its hooks in `events`; `fail` names a hook that raises."""

    def __init__(self, app: Any, *, events: list[str], fail: str = "") -> None:
        super().__init__(app, config=CONFIG)
        self.events, self.fail = events, fail

    async def startup(self) -> None:
        self.events.append("startup")
        if self.fail == "startup":
            raise ConnectionError("cannot reach its store")

    async def shutdown(self) -> None:
        self.events.append("shutdown")
        if self.fail == "shutdown":
            raise RuntimeError("cannot close its pool")


async def http_only(scope: Any, receive: Any, send: Any) -> None:
    assert scope["type"] == "http", "this app does not speak lifespan"


async def test_a_healthy_stack_is_started_and_shut_down():
    events: list[str] = []
    await run_lifespan_shutdown(Hooked(ProviderApp(config=CONFIG), events=events))
    assert events == ["startup", "shutdown"]


async def test_an_app_without_lifespan_is_let_off():
    await run_lifespan_shutdown(http_only)  # nothing raised: it opened nothing to close
    # An asgi-llm layer around such an app starts nothing either, so it is let off too.
    events: list[str] = []
    await run_lifespan_shutdown(Hooked(http_only, events=events))
    assert events == []


async def test_a_shutdown_hook_that_raises_fails_the_teardown():
    events: list[str] = []
    with pytest.raises(AssertionError, match="cannot close its pool"):
        await run_lifespan_shutdown(Hooked(ProviderApp(config=CONFIG), events=events, fail="shutdown"))
    assert events == ["startup", "shutdown"]


async def test_a_startup_that_raises_fails_the_teardown():
    with pytest.raises(RuntimeError, match="lifespan startup failed: .*cannot reach its store"):
        await run_lifespan_shutdown(Hooked(ProviderApp(config=CONFIG), events=[], fail="startup"))


async def test_an_app_that_breaks_after_its_lifespan_fails_the_teardown():
    inner = Hooked(ProviderApp(config=CONFIG), events=[])

    async def careless(scope: Any, receive: Any, send: Any) -> None:
        await inner(scope, receive, send)
        _ = scope["state"]["llm"]  # only an http scope has a request context: KeyError here

    with pytest.raises(RuntimeError, match="lifespan shutdown failed") as failure:
        await run_lifespan_shutdown(careless)
    assert isinstance(failure.value.__cause__, KeyError)


async def test_every_app_is_shut_down_even_after_one_fails():
    first: list[str] = []
    second: list[str] = []
    apps = [
        Hooked(ProviderApp(config=CONFIG), events=first, fail="shutdown"),
        Hooked(ProviderApp(config=CONFIG), events=second),
        Hooked(ProviderApp(config=CONFIG), events=[], fail="startup"),
    ]
    with pytest.raises(ExceptionGroup) as failures:
        await shut_down_all(apps)
    assert [type(e) for e in failures.value.exceptions] == [AssertionError, RuntimeError]
    assert first == second == ["startup", "shutdown"]
