"""The writer when PostgreSQL goes away: a real loopback fault proxy between the ledger and
the machine's PostgreSQL (which is never stopped) cuts or stalls the connections while
requests flow. Requests never wait for the database; records wait in memory and are written
when it answers again; only what is past both bounds is dropped, and counted. Also the
writer's other duty: deleting what is older than `retention_days`."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit

import httpx2

from asgi_llm import Config, build_app
from asgi_llm.config.schema import Ledger as LedgerSettings
from asgi_llm.ledger.service import open_store
from asgi_llm.ledger.store import Filters
from asgi_llm.lifespan import lifespan
from tests.conftest import mock_model
from tests.fakes.faultproxy import FaultProxy
from tests.ledger.conftest import record
from tests.waiting import await_until

CHAT = {"model": "m1", "messages": [{"role": "user", "content": "hello"}]}


def through(proxy: FaultProxy, url: str) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}").geturl()


def document(url: str, **ledger: Any) -> dict[str, Any]:
    return {
        "models": [mock_model("m1")],
        "metrics": {"prometheus": {}},
        "ledger": {"url": url, "flush_interval_s": 0.02, "timeout_s": 0.3, **ledger},
    }


async def count(url: str) -> int:
    store = open_store(LedgerSettings(url=url))
    try:
        return len(await store.requests(Filters(), 10_000, None))
    finally:
        await store.aclose()


async def timed_requests(client: httpx2.AsyncClient, n: int) -> float:
    """The slowest of `n` chat requests, in seconds."""
    slowest = 0.0
    for _ in range(n):
        start = time.perf_counter()
        response = await client.post("/v1/chat/completions", json=CHAT)
        assert response.status_code == 200, response.text
        slowest = max(slowest, time.perf_counter() - start)
        # In process a request may never suspend: give the loop a turn, as sockets would.
        await asyncio.sleep(0.001)
    return slowest


def metric(app: Any, name: str) -> float:
    value = app.metrics.prometheus.registry.get_sample_value(name)
    return float(value or 0.0)


async def test_an_outage_under_load_slows_no_request_and_loses_nothing(pg_url):
    with FaultProxy(("127.0.0.1", urlsplit(pg_url).port or 5432)) as proxy:
        app = build_app(Config.from_dict(document(through(proxy, pg_url))))
        writer = app.services.ledger.writer
        async with lifespan(app):
            transport = httpx2.ASGITransport(app=app)
            async with httpx2.AsyncClient(transport=transport, base_url="http://proxy.test") as client:
                baseline = await timed_requests(client, 20)
                await await_until(lambda: writer.written == 20)

                proxy.down()  # the database goes away: connections cut, new ones refused
                total, during, start = 20, 0.0, time.monotonic()
                while time.monotonic() - start < 3.0:  # three seconds of load while it is down
                    during = max(during, await timed_requests(client, 25))
                    total += 25
                assert writer.down_since is not None and writer.spill
                assert writer.written == 20 and writer.dropped == 0

                proxy.up()  # it answers again: the spill and the queue are written
                await await_until(lambda: writer.written == total and not writer.spill, timeout=15)
        assert writer.dropped == 0
        assert during < max(0.25, 20 * baseline), (during, baseline)  # no request waited on the database
        assert metric(app, "asgi_llm_ledger_written_total") == total
        assert metric(app, "asgi_llm_ledger_dropped_total") == 0
    assert await count(pg_url) == total


async def test_past_the_queue_and_the_spill_records_are_dropped_and_counted(pg_url):
    with FaultProxy(("127.0.0.1", urlsplit(pg_url).port or 5432)) as proxy:
        config = document(through(proxy, pg_url), queue_size=10, spill_max=5, batch_size=4)
        app = build_app(Config.from_dict(config))
        writer = app.services.ledger.writer
        async with lifespan(app):
            transport = httpx2.ASGITransport(app=app)
            async with httpx2.AsyncClient(transport=transport, base_url="http://proxy.test") as client:
                await timed_requests(client, 3)
                await await_until(lambda: writer.written == 3)
                proxy.set(blackhole=True)  # a stalled database: every write times out
                assert await timed_requests(client, 60) < 0.25
                await await_until(lambda: writer.down_since is not None, timeout=5)
                assert len(writer.spill) <= 5 and len(writer.queue) <= 10
                proxy.clear()
                proxy.down()  # drop the stalled connections; then a healthy database again
                proxy.up()
                await await_until(
                    lambda: not writer.spill and not writer.queue and writer.down_since is None, timeout=15
                )
        assert writer.dropped > 0 and writer.written + writer.dropped == 63
        assert writer.written >= 3 + 5  # at least the spill's worth came through
        assert metric(app, "asgi_llm_ledger_dropped_total") == writer.dropped
    assert await count(pg_url) == writer.written


async def test_retention_deletes_what_is_older_than_retention_days(tmp_path):
    url = f"sqlite:///{tmp_path}/ledger.db"
    store = open_store(LedgerSettings(url=url))
    await store.migrate()
    now = time.time()
    await store.write([record(1, ts=now - 3 * 86400), record(2, ts=now - 3600)])
    await store.aclose()
    app = build_app(Config.from_dict(document(url, retention_days=1)))
    async with lifespan(app):
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://proxy.test") as client:
            await timed_requests(client, 1)  # a write, then the first prune
            store = open_store(LedgerSettings(url=url))
            try:

                async def old_one_gone() -> list[str] | None:
                    ids = sorted(r["request_id"] for r in await store.requests(Filters(), 10, None))
                    return ids if len(ids) == 2 and "req-1" not in ids else None

                remaining = await await_until(old_one_gone)
            finally:
                await store.aclose()
    assert len(remaining) == 2 and "req-1" not in remaining and "req-2" in remaining
