"""The LedgerStore suite, run on SQLite and on PostgreSQL alike."""

from __future__ import annotations

import asyncio

import pytest

from asgi_llm.config.schema import Ledger as LedgerSettings
from asgi_llm.ledger.migrations import LATEST
from asgi_llm.ledger.record import AttemptRecord
from asgi_llm.ledger.service import open_store
from asgi_llm.ledger.store import Cursor, Filters
from tests.ledger.conftest import record

DAY = 86400.0
T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z


async def test_migrations_are_idempotent_and_safe_when_replicas_start_at_once(ledger_url):
    stores = [open_store(LedgerSettings(url=ledger_url)) for _ in range(3)]
    try:
        versions = await asyncio.gather(*(s.migrate() for s in stores))
        assert versions == [LATEST] * 3
        assert await stores[0].migrate() == LATEST  # again: nothing to do
        rows = await stores[0]._select("SELECT version FROM ledger_schema_version", ())  # type: ignore[attr-defined]
        assert [tuple(r) for r in rows] == [(v,) for v in range(1, LATEST + 1)]
    finally:
        for s in stores:
            await s.aclose()


async def test_a_retried_batch_never_doubles_a_record(store):
    batch = [record(n) for n in range(5)]
    await store.write(batch)
    await store.write(batch[2:] + [record(5)])  # a retry after a timeout that had landed
    rows = await store.requests(Filters(), 100, None)
    assert sorted(r["id"] for r in rows) == [f"rec-{n:06d}" for n in range(6)]
    assert [a["n"] for a in await store.attempts("rec-000002")] == [1]
    usage = await store.usage("model", Filters())
    assert [(u["requests"], u["input_tokens"]) for u in usage] == [
        (6, sum(r.input_tokens for r in batch) + record(5).input_tokens)
    ]


async def test_a_batch_holding_an_id_twice_writes_it_once(store):
    # PostgreSQL's COPY fails whole on a duplicate: the batch is written again, skipping it.
    await store.write([record(1), record(2), record(1)])
    assert sorted(r["id"] for r in await store.requests(Filters(), 100, None)) == ["rec-000001", "rec-000002"]
    assert [u["requests"] for u in await store.usage("model", Filters())] == [2]
    await store.write([record(3)])  # the connection's next batch goes on as usual
    assert [u["requests"] for u in await store.usage("model", Filters())] == [3]


async def test_a_record_reads_back_as_written(store):
    written = record(
        1,
        user="bob",
        stream=True,
        client_gone=True,
        cache="hit",
        cache_kind="semantic",
        tags={"team": "search", "exp": "b"},
        cached_tokens=3,
        cache_write_tokens=2,
        cache_write_1h_tokens=1,
        reasoning_tokens=4,
        ttft_ms=7.5,
        prompt='{"messages": []}',
        completion="hello",
        attempt_log=(
            AttemptRecord(1, "m1-0", "m1", 0.5, 3.0, 503, "upstream_error", "upstream_error"),
            AttemptRecord(2, "m1-1", "m1", 4.0, 10.0, 200, None, None),
        ),
    )
    await store.write([written])
    (row,) = await store.requests(Filters(), 10, None, content=True)
    assert row["user_id"] == "bob" and row["stream"] is True and row["client_gone"] is True
    assert row["tags"] == {"team": "search", "exp": "b"}
    assert (row["cached_tokens"], row["cache_write_tokens"], row["cache_write_1h_tokens"]) == (3, 2, 1)
    assert row["reasoning_tokens"] == 4 and row["ttft_ms"] == 7.5 and row["ts"] == written.ts
    assert row["prompt"] == '{"messages": []}' and row["completion"] == "hello"
    (plain,) = await store.requests(Filters(), 10, None)
    assert "prompt" not in plain  # content is read only when asked for
    attempts = await store.attempts(written.id)
    assert [(a["n"], a["deployment"], a["status"], a["error_code"]) for a in attempts] == [
        (1, "m1-0", 503, "upstream_error"),
        (2, "m1-1", 200, None),
    ]


async def test_usage_groups_sums_and_filters(store):
    await store.write(
        [
            record(1, ts=T0, model="a", key_id="k1", tenant="t1", cost_usd=0.5, input_tokens=10),
            record(
                2, ts=T0 + 60, model="a", key_id="k2", tenant="t1", status=502, error_type="upstream_error"
            ),
            record(
                3, ts=T0 + DAY, model="b", key_id="k1", tenant="t2", cache="hit", saved_usd=0.25, cost_usd=0.0
            ),
            record(
                4,
                ts=T0 + DAY + 3600,
                model="b",
                key_id=None,
                tenant=None,
                output_tokens=7,
                reasoning_tokens=2,
            ),
        ]
    )
    by_model = {r["group"]: r for r in await store.usage("model", Filters())}
    assert set(by_model) == {"a", "b"}
    a, b = by_model["a"], by_model["b"]
    assert (a["requests"], a["errors"], a["cache_hits"], a["input_tokens"]) == (2, 1, 0, 20)
    assert a["cost_usd"] == pytest.approx(0.501)
    assert (b["requests"], b["cache_hits"], b["saved_usd"], b["output_tokens"]) == (2, 1, 0.25, 12)
    assert b["reasoning_tokens"] == 2 and isinstance(b["latency_ms_avg"], float)

    by_key = {r["group"]: r["requests"] for r in await store.usage("key", Filters())}
    assert by_key == {"k1": 2, "k2": 1, "": 1}  # no key (auth off): ""
    by_day = [(r["group"], r["requests"]) for r in await store.usage("day", Filters())]
    assert by_day == [("2027-01-15", 2), ("2027-01-16", 2)]
    by_hour = [r["group"] for r in await store.usage("hour", Filters(start=T0 + DAY))]
    assert by_hour == ["2027-01-16T08:00Z", "2027-01-16T09:00Z"]
    only = await store.usage("tenant", Filters(tenant="t1", start=T0, end=T0 + 61, model="a", key="k1"))
    assert [(r["group"], r["requests"]) for r in only] == [("t1", 1)]
    assert await store.usage("deployment", Filters(start=T0 + 10 * DAY)) == []


async def test_the_request_log_pages_newest_first_with_a_cursor(store):
    await store.write([record(n, ts=T0 + n // 2) for n in range(25)])  # ties on ts: the id orders
    seen: list[str] = []
    before: Cursor | None = None
    while True:
        page = await store.requests(Filters(), 10, before)
        seen += [r["id"] for r in page]
        if len(page) < 10:
            break
        before = Cursor(page[-1]["ts"], page[-1]["id"])
    assert seen == [f"rec-{n:06d}" for n in reversed(range(25))]
    assert [r["id"] for r in await store.requests(Filters(status=200, request_id="req-7"), 10, None)] == [
        "rec-000007"
    ]


async def test_prune_deletes_records_and_attempts_older_than_the_cut(store):
    await store.write([record(n, ts=T0 + n * DAY) for n in range(4)])
    assert await store.prune(T0 + 2 * DAY) == 2
    assert [r["id"] for r in await store.requests(Filters(), 10, None)] == ["rec-000003", "rec-000002"]
    assert await store.attempts("rec-000000") == []
