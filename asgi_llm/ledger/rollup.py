"""Hourly rollups: the usage queries read whole hours from `ledger_hourly` and only the
ragged edges of a range from the records themselves.

Reading a week of a busy ledger record by record took seconds (a million rows over 30 days
in SQLite: 1.8 s for 7 days, 7.8 s for 30, with the ts index); the dashboard's overview asks
exactly that. A row of `ledger_hourly` sums one hour of one (tenant, key, model, deployment):
counts, every token kind, cost, savings and the latency sum. It is written in the same
transaction as the records it sums, from the records that were new (a batch retried after a
timeout adds nothing twice), so the two never disagree. A range's whole hours come from it;
the part before its first whole hour and after its last come from the records (at most two
hours of them), and the two are merged by group.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

from asgi_llm.ledger import sql
from asgi_llm.ledger.record import LedgerRecord
from asgi_llm.ledger.store import Filters

HOUR = 3600
DIMENSIONS = ("tenant", "key_id", "model", "deployment")
SUMS = (*sql.USAGE_FIELDS[1:-1], "latency_ms_sum")  # the usage fields, less the mean: its sum
_KEY = ("hour", *DIMENSIONS)

_FLOATS = frozenset({"cost_usd", "saved_usd", "latency_ms_sum"})
_COLUMNS = ", ".join(
    [
        "hour {bigint} NOT NULL",
        *(f"{name} TEXT NOT NULL" for name in DIMENSIONS),
        *(
            f"{name} {{float}} NOT NULL" if name in _FLOATS else f"{name} {{bigint}} NOT NULL"
            for name in SUMS
        ),
    ]
)
# An hour's sums of the records a FROM clause names (the records table, or the batch just
# inserted), grouped by (hour, tenant, key, model, deployment): one SELECT for the migration's
# backfill and for every write.
_SELECT_SUMS = (
    "SELECT {hour_of_ts}, "
    + ", ".join(f"COALESCE({name}, '')" for name in DIMENSIONS)
    + ", COUNT(*), SUM(CASE WHEN status >= 400 OR error_type IS NOT NULL THEN 1 ELSE 0 END),"
    " SUM(CASE WHEN cache = 'hit' THEN 1 ELSE 0 END), SUM(input_tokens), SUM(output_tokens),"
    " SUM(cached_tokens), SUM(cache_write_tokens), SUM(reasoning_tokens), SUM(cost_usd),"
    " SUM(saved_usd), SUM(latency_ms) FROM {source} GROUP BY 1, 2, 3, 4, 5"
)
# What the sums read of a record (PostgreSQL returns them from the INSERT of a retried batch).
# (the token sums and cost, savings: named as the usage fields are)
SUMMED_COLUMNS = ("ts", *DIMENSIONS, "status", "error_type", "cache", *sql.USAGE_FIELDS[4:11], "latency_ms")
# Schema version 2 (migrations.py): the table, and the sums of the records already there.
MIGRATION = [
    f"CREATE TABLE IF NOT EXISTS ledger_hourly ({_COLUMNS}, PRIMARY KEY ({', '.join(_KEY)}))",
    "INSERT INTO ledger_hourly " + _SELECT_SUMS.replace("{source}", "ledger_requests"),
]
HOUR_OF_TS = {
    "sqlite": "CAST(ts / 3600 AS INTEGER) * 3600",
    "postgresql": "CAST(floor(ts / 3600) AS BIGINT) * 3600",
}


def add_sums(dialect: sql.Dialect, source: str) -> str:
    """The statement adding to `ledger_hourly` the sums of the records `source` (a FROM
    clause) names: run in the write's transaction on the records it inserted (not those it
    skipped as stored already), so a retried batch adds nothing twice. Summed by the
    database, in one statement: no Python loop over the records, no row per hour sent."""
    return (
        "INSERT INTO ledger_hourly "
        + _SELECT_SUMS.format(hour_of_ts=HOUR_OF_TS[dialect], source=source)
        + f" ON CONFLICT ({', '.join(_KEY)}) DO UPDATE SET "
        + ", ".join(f"{name} = ledger_hourly.{name} + excluded.{name}" for name in SUMS)
    )


# One hour's sums sent as values (PostgreSQL's write sums a batch it copied straight in).
UPSERT = (
    f"INSERT INTO ledger_hourly ({', '.join((*_KEY, *SUMS))})"
    f" VALUES ({', '.join('?' * (len(_KEY) + len(SUMS)))})"
    f" ON CONFLICT ({', '.join(_KEY)}) DO UPDATE SET "
    + ", ".join(f"{name} = ledger_hourly.{name} + excluded.{name}" for name in SUMS)
)
PRUNE = "DELETE FROM ledger_hourly WHERE hour + 3600 <= ?"  # hours wholly before the cut


def hourly_rows(records: Sequence[LedgerRecord]) -> list[tuple[Any, ...]]:
    """The rollup rows of a batch of new records, one per (hour, tenant, key, model,
    deployment): what `add_sums` computes in SQL, for `UPSERT`."""
    sums: dict[tuple[Any, ...], list[float]] = {}
    for r in records:
        key = (int(r.ts // HOUR) * HOUR, r.tenant or "", r.key_id or "", r.model or "", r.deployment or "")
        row = sums.get(key)
        if row is None:
            row = sums[key] = [0] * len(SUMS)
        row[0] += 1
        row[1] += 1 if r.status >= 400 or r.error_type is not None else 0
        row[2] += 1 if r.cache == "hit" else 0
        row[3] += r.input_tokens
        row[4] += r.output_tokens
        row[5] += r.cached_tokens
        row[6] += r.cache_write_tokens
        row[7] += r.reasoning_tokens
        row[8] += float(r.cost_usd)
        row[9] += float(r.saved_usd)
        row[10] += float(r.latency_ms)
    return [(*key, *values) for key, values in sums.items()]


def split(filters: Filters) -> tuple[list[Filters], tuple[float | None, float | None] | None]:
    """(the record-level parts, the whole hours [first, last) for the rollup, or None)."""
    if filters.status is not None or filters.request_id is not None:
        return [filters], None  # not in the rollup: the records answer
    start, end = filters.start, filters.end
    first = None if start is None else math.ceil(start / HOUR) * HOUR
    last = None if end is None else math.floor(end / HOUR) * HOUR
    if first is not None and last is not None and first >= last:
        return [filters], None  # no whole hour inside
    edges = []
    if start is not None and first is not None and start < first:
        edges.append(replace(filters, start=start, end=first))
    if end is not None and last is not None and last < end:
        edges.append(replace(filters, start=last, end=end))
    return edges, (first, last)


def rollup_query(
    dialect: sql.Dialect, group_by: str, filters: Filters, hours: tuple[float | None, float | None]
) -> tuple[str, list[Any]]:
    if group_by in ("day", "hour"):
        expr = re.sub(r"\bts\b", "hour", sql.BUCKETS[dialect][group_by])
    else:
        expr = sql.GROUP_COLUMNS[group_by]
    clauses, params = [], []
    first, last = hours
    if first is not None:
        clauses.append("hour >= ?")
        params.append(int(first))
    if last is not None:
        clauses.append("hour < ?")
        params.append(int(last))
    for name, column in (
        ("key", "key_id"),
        ("tenant", "tenant"),
        ("model", "model"),
        ("deployment", "deployment"),
    ):
        value = getattr(filters, name)
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    where = " WHERE " + " AND ".join(clauses) if clauses else ""
    query = (
        f"SELECT {expr} AS grp, "
        + ", ".join(f"SUM({name})" for name in SUMS)
        + f" FROM ledger_hourly{where} GROUP BY grp"
    )
    return (sql.numbered(query) if dialect == "postgresql" else query), params


Select = Callable[[str, Sequence[Any]], Awaitable[Sequence[Sequence[Any]]]]


async def usage(
    select: Select, dialect: sql.Dialect, group_by: str, filters: Filters
) -> list[dict[str, Any]]:
    """What `sql.usage_query` answers, read from the rollup wherever a whole hour allows."""
    edges, hours = split(filters)
    groups: dict[str, list[float]] = {}
    for part in edges:
        query, params = sql.usage_query(dialect, group_by, part)
        for row in await select(query, params):
            found = sql.usage_row(tuple(row))
            values = [found[name] for name in sql.USAGE_FIELDS[1:-1]]
            _add(groups, found["group"], [*values, found["latency_ms_avg"] * found["requests"]])
    if hours is not None:
        query, params = rollup_query(dialect, group_by, filters, hours)
        for row in await select(query, params):
            row = tuple(row)
            _add(groups, "" if row[0] is None else str(row[0]), [float(v or 0) for v in row[1:]])
    rows = [_public(group, values) for group, values in groups.items()]
    if group_by in ("day", "hour"):
        rows.sort(key=lambda r: r["group"])
    else:
        rows.sort(key=lambda r: (-r["cost_usd"], -r["requests"], r["group"]))
    return rows[: sql.MAX_GROUPS]


def _add(groups: dict[str, list[float]], group: str, values: list[float]) -> None:
    held = groups.get(group)
    if held is None:
        groups[group] = values
    else:
        for i, value in enumerate(values):
            held[i] += value


def _public(group: str, values: list[float]) -> dict[str, Any]:
    out: dict[str, Any] = {"group": group}
    for name, value in zip(SUMS[:8], values[:8], strict=True):
        out[name] = int(value)
    out["cost_usd"], out["saved_usd"] = values[8], values[9]
    out["latency_ms_avg"] = values[10] / values[0] if values[0] else 0.0
    return out


__all__ = [
    "HOUR_OF_TS",
    "MIGRATION",
    "PRUNE",
    "SUMMED_COLUMNS",
    "UPSERT",
    "add_sums",
    "hourly_rows",
    "split",
    "usage",
]
