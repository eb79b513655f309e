"""tests/waiting.py: a wait returns the condition's first truthy value, or fails saying what
it waited for."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.waiting import await_until, wait_until


def test_wait_until_returns_the_first_truthy_value():
    calls = []

    def third_time() -> str:
        calls.append(1)
        return "ready" if len(calls) == 3 else ""

    assert wait_until(third_time, interval=0) == "ready"
    assert len(calls) == 3


def test_wait_until_fails_naming_what_it_waited_for():
    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"not within 0.05 s: the moon; last 0"):
        wait_until(lambda: 0, timeout=0.05, message="the moon")
    assert 0.05 <= time.monotonic() - started < 1
    with pytest.raises(AssertionError, match=r"test_waiting.py:\d+\); last None"):
        wait_until(lambda: None, timeout=0)


async def test_await_until_runs_the_loop_and_awaits_a_coroutine_predicate():
    flag = asyncio.Event()
    asyncio.get_running_loop().call_later(0.02, flag.set)
    assert await await_until(flag.is_set) is True

    async def answer() -> int:
        return 42

    assert await await_until(answer) == 42
    with pytest.raises(AssertionError, match="not within 0.02 s: never"):
        await await_until(asyncio.Event().is_set, timeout=0.02, message="never")
