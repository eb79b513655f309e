"""Wait for a condition with a deadline, instead of sleeping a guessed time.

A sleep that waits for something to happen is either too long (a slow suite) or too short on
a loaded machine (a flaky one). These poll a predicate and fail with what was waited for.
Sleeps that *are* the behaviour under test (a TTL or cooldown running out, a slow client)
stay sleeps.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def _describe(predicate: Callable[[], object], message: str) -> str:
    if message:
        return message
    code = getattr(predicate, "__code__", None)
    where = f" ({code.co_filename}:{code.co_firstlineno})" if code is not None else ""
    return f"{getattr(predicate, '__qualname__', predicate)!s}{where}"


def wait_until(
    predicate: Callable[[], T], *, timeout: float = 5.0, interval: float = 0.01, message: str = ""
) -> T:
    """The first truthy value of `predicate()`, polled every `interval` s for `timeout` s; an
    AssertionError naming what was waited for (and its last value) when none comes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout} s: {_describe(predicate, message)}; last {value!r}")
        time.sleep(interval)


async def await_until(
    predicate: Callable[[], T | Awaitable[T]],
    *,
    timeout: float = 5.0,
    interval: float = 0.01,
    message: str = "",
) -> T:
    """`wait_until` for the event loop: the predicate may be a coroutine function, and the
    loop runs (the app's background tasks with it) between polls."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout} s: {_describe(predicate, message)}; last {value!r}")
        await asyncio.sleep(interval)
