"""The SQL both backends speak, written once with `?` placeholders (PostgreSQL's `$n` are
numbered from them) and the few expressions that differ (day and hour buckets) per dialect.

Times are UTC epoch seconds in a double column (`ts`): one type both databases index and
compare alike; flags are integers 0/1 for the same reason.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

import orjson

from asgi_llm.ledger.record import LedgerRecord
from asgi_llm.ledger.store import Cursor, Filters

Dialect = Literal["sqlite", "postgresql"]

# The request table's columns, in the order rows are written and read.
REQUEST_COLUMNS = (
    "id",
    "request_id",
    "ts",
    "key_id",
    "tenant",
    "user_id",
    "endpoint",
    "model_asked",
    "model",
    "deployment",
    "status",
    "error_type",
    "error_code",
    "attempts",
    "cache",
    "cache_kind",
    "stream",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "reasoning_tokens",
    "cost_usd",
    "saved_usd",
    "latency_ms",
    "upstream_ms",
    "ttft_ms",
    "client_gone",
    "tags",
    "prompt",
    "completion",
)
ATTEMPT_COLUMNS = (
    "record_id",
    "n",
    "ts",
    "deployment",
    "model",
    "start_ms",
    "duration_ms",
    "status",
    "error_type",
    "error_code",
)
_FLAGS = ("stream", "client_gone")

INSERT_REQUEST = (
    f"INSERT INTO ledger_requests ({', '.join(REQUEST_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(REQUEST_COLUMNS))}) ON CONFLICT (id) DO NOTHING"
)
INSERT_ATTEMPT = (
    f"INSERT INTO ledger_attempts ({', '.join(ATTEMPT_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(ATTEMPT_COLUMNS))}) ON CONFLICT (record_id, n) DO NOTHING"
)
SELECT_ATTEMPTS = (
    f"SELECT {', '.join(ATTEMPT_COLUMNS[1:])} FROM ledger_attempts WHERE record_id = ? ORDER BY n"
)
PRUNE = (
    "DELETE FROM ledger_attempts WHERE ts < ?",
    "DELETE FROM ledger_requests WHERE ts < ?",
)

BUCKETS: dict[Dialect, dict[str, str]] = {
    "sqlite": {
        "day": "strftime('%Y-%m-%d', ts, 'unixepoch')",
        "hour": "strftime('%Y-%m-%dT%H:00Z', ts, 'unixepoch')",
    },
    "postgresql": {
        "day": "to_char(to_timestamp(ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
        "hour": "to_char(to_timestamp(ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:00\"Z\"')",
    },
}
GROUP_COLUMNS = {"key": "key_id", "tenant": "tenant", "model": "model", "deployment": "deployment"}
_FILTER_COLUMNS = (
    ("key", "key_id"),
    ("tenant", "tenant"),
    ("model", "model"),
    ("deployment", "deployment"),
    ("status", "status"),
    ("request_id", "request_id"),
)
_PLACEHOLDER = re.compile(r"\?")
MAX_GROUPS = 10_000


def numbered(sql: str) -> str:
    """`?` placeholders as PostgreSQL's `$1, $2, ...` (no literal in our SQL holds a `?`)."""
    count = iter(range(1, 1_000_000))
    return _PLACEHOLDER.sub(lambda _: f"${next(count)}", sql)


def request_row(record: LedgerRecord) -> tuple[Any, ...]:
    r = record
    return (
        r.id,
        r.request_id,
        r.ts,
        r.key_id,
        r.tenant,
        r.user,
        r.endpoint,
        r.model_asked,
        r.model,
        r.deployment,
        r.status,
        r.error_type,
        r.error_code,
        r.attempts,
        r.cache,
        r.cache_kind,
        int(r.stream),
        r.input_tokens,
        r.output_tokens,
        r.cached_tokens,
        r.cache_write_tokens,
        r.cache_write_1h_tokens,
        r.reasoning_tokens,
        float(r.cost_usd),
        float(r.saved_usd),
        float(r.latency_ms),
        r.upstream_ms,
        r.ttft_ms,
        int(r.client_gone),
        orjson.dumps(r.tags).decode() if r.tags else None,
        r.prompt,
        r.completion,
    )


def attempt_rows(records: Sequence[LedgerRecord]) -> list[tuple[Any, ...]]:
    return [
        (
            r.id,
            a.n,
            r.ts,
            a.deployment,
            a.model,
            a.start_ms,
            a.duration_ms,
            a.status,
            a.error_type,
            a.error_code,
        )  # noqa: E501
        for r in records
        for a in r.attempt_log
    ]


def where(filters: Filters) -> tuple[str, list[Any]]:
    """` WHERE ...` (or "") and its parameters."""
    clauses: list[str] = []
    params: list[Any] = []
    if filters.start is not None:
        clauses.append("ts >= ?")
        params.append(float(filters.start))
    if filters.end is not None:
        clauses.append("ts < ?")
        params.append(float(filters.end))
    for name, column in _FILTER_COLUMNS:
        value = getattr(filters, name)
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def usage_query(dialect: Dialect, group_by: str, filters: Filters) -> tuple[str, list[Any]]:
    bucket = group_by in ("day", "hour")
    expr = BUCKETS[dialect][group_by] if bucket else GROUP_COLUMNS[group_by]
    clause, params = where(filters)
    sql = (
        f"SELECT COALESCE({expr}, '') AS grp, COUNT(*) AS requests,"
        " SUM(CASE WHEN status >= 400 OR error_type IS NOT NULL THEN 1 ELSE 0 END) AS errors,"
        " SUM(CASE WHEN cache = 'hit' THEN 1 ELSE 0 END) AS cache_hits,"
        " CAST(SUM(input_tokens) AS BIGINT), CAST(SUM(output_tokens) AS BIGINT),"
        " CAST(SUM(cached_tokens) AS BIGINT), CAST(SUM(cache_write_tokens) AS BIGINT),"
        " CAST(SUM(reasoning_tokens) AS BIGINT), SUM(cost_usd), SUM(saved_usd), AVG(latency_ms)"
        f" FROM ledger_requests{clause} GROUP BY grp"
        + (" ORDER BY grp" if bucket else " ORDER BY SUM(cost_usd) DESC, COUNT(*) DESC, grp")
        + f" LIMIT {MAX_GROUPS}"
    )
    return (numbered(sql) if dialect == "postgresql" else sql), params


USAGE_FIELDS = (
    "group",
    "requests",
    "errors",
    "cache_hits",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost_usd",
    "saved_usd",
    "latency_ms_avg",
)


def usage_row(row: Sequence[Any]) -> dict[str, Any]:
    out = dict(zip(USAGE_FIELDS, row, strict=True))
    for name in USAGE_FIELDS[1:9]:
        out[name] = int(out[name] or 0)
    for name in USAGE_FIELDS[9:]:
        out[name] = float(out[name] or 0.0)
    out["group"] = str(out["group"])
    return out


def requests_query(
    dialect: Dialect, filters: Filters, limit: int, before: Cursor | None, *, content: bool
) -> tuple[str, list[Any]]:
    clause, params = where(filters)
    if before is not None:
        clause += (" AND " if clause else " WHERE ") + "(ts < ? OR (ts = ? AND id < ?))"
        params += [before.ts, before.ts, before.id]
    columns = REQUEST_COLUMNS if content else REQUEST_COLUMNS[:-2]
    sql = f"SELECT {', '.join(columns)} FROM ledger_requests{clause} ORDER BY ts DESC, id DESC LIMIT ?"
    params.append(int(limit))
    return (numbered(sql) if dialect == "postgresql" else sql), params


def request_dict(row: Sequence[Any]) -> dict[str, Any]:
    out = dict(zip(REQUEST_COLUMNS, row, strict=False))
    for flag in _FLAGS:
        out[flag] = bool(out[flag])
    out["tags"] = orjson.loads(out["tags"]) if out["tags"] else {}
    return out


def attempt_dict(row: Sequence[Any]) -> dict[str, Any]:
    return dict(zip(ATTEMPT_COLUMNS[1:], row, strict=True))


__all__ = [
    "ATTEMPT_COLUMNS",
    "INSERT_ATTEMPT",
    "INSERT_REQUEST",
    "PRUNE",
    "REQUEST_COLUMNS",
    "SELECT_ATTEMPTS",
    "Dialect",
    "attempt_dict",
    "attempt_rows",
    "numbered",
    "request_dict",
    "request_row",
    "requests_query",
    "usage_query",
    "usage_row",
    "where",
]
