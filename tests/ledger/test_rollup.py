"""The hourly rollup answers every usage query as the records themselves would, on both
backends: ragged range edges, whole-hour edges, filters, a batch written twice."""

from __future__ import annotations

import math
import random

import pytest

from asgi_llm.ledger import rollup, sql
from asgi_llm.ledger.store import GROUPS, Filters
from tests.dashboard.seed import records

NOW = 1_800_000_000.0


async def raw_usage(store, group_by: str, filters: Filters) -> list[dict]:
    query, params = sql.usage_query(store.dialect, group_by, filters)
    return [sql.usage_row(tuple(row)) for row in await store._select(query, params)]


def assert_same(got: list[dict], want: list[dict]) -> None:
    assert [row["group"] for row in got] == [row["group"] for row in want]
    for mine, theirs in zip(got, want, strict=True):
        for name, value in theirs.items():
            if isinstance(value, float):
                assert math.isclose(mine[name], value, rel_tol=1e-9, abs_tol=1e-9), (name, mine, theirs)
            else:
                assert mine[name] == value, (name, mine, theirs)


async def test_the_rollup_answers_as_the_records_do(store):
    batch = records(600, now=NOW, days=3, seed=11)
    await store.write(batch[:400])
    await store.write(batch[300:])  # a retried batch: the 100 again add nothing
    rng = random.Random(3)
    ranges = [
        Filters(),
        Filters(start=NOW - 86400, end=NOW),
        Filters(start=NOW - 2 * 86400 + 1234.5, end=NOW - 3600 * 5 - 17.25),
        Filters(start=rollup.HOUR * math.floor((NOW - 86400) / rollup.HOUR), end=NOW),  # whole-hour start
        Filters(start=NOW - 1800, end=NOW - 600),  # inside one hour: records only
        Filters(end=NOW - 86400),
        Filters(start=NOW - 3 * 86400, tenant="a"),
        Filters(start=NOW - 2 * 86400, end=NOW, key="key-b1", model="m2"),
        Filters(start=NOW - 2 * 86400, end=NOW, status=502),  # not in the rollup
    ]
    for filters in ranges:
        for group_by in GROUPS:
            assert_same(await store.usage(group_by, filters), await raw_usage(store, group_by, filters))
    start = NOW - rng.uniform(0, 3 * 86400)
    filters = Filters(start=start, end=start + rng.uniform(3600, 86400))
    assert_same(await store.usage("day", filters), await raw_usage(store, "day", filters))


async def test_the_migration_sums_records_written_before_it(store):
    await store.write(records(50, now=NOW, days=1, seed=5))
    if store.dialect == "sqlite":
        await store._run(lambda conn: conn.execute("DELETE FROM ledger_hourly"))
        await store._run(
            lambda conn: conn.execute(rollup.MIGRATION[1].format(hour_of_ts=rollup.HOUR_OF_TS["sqlite"]))
        )
        filters = Filters(start=NOW - 86400, end=NOW)
        assert_same(await store.usage("hour", filters), await raw_usage(store, "hour", filters))
    else:
        pytest.skip("the backfill statement is checked on SQLite; PostgreSQL runs it at migrate")
