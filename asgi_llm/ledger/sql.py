"""The SQL both backends speak, written once with `?` placeholders (PostgreSQL's `$n` are
numbered from them) and the few expressions that differ (day and hour buckets) per dialect.

Times are UTC epoch seconds in a double column (`ts`): one type both databases index and
compare alike; flags are integers 0/1 for the same reason.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any, Literal

import orjson

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
    "attempt_log",
)
# An attempt, as the JSON array each one is in `attempt_log` (a record's attempts are read
# with it: one column, not a table whose every row would cost an insert and an index).
ATTEMPT_FIELDS = (
    "n",
    "deployment",
    "model",
    "start_ms",
    "duration_ms",
    "status",
    "error_type",
    "error_code",
)
_FLAGS = ("stream", "client_gone")

# Rows per multi-row INSERT (SQLite): 500 x 32 parameters, within its 32,766.
ROWS_PER_INSERT = 500
_ONE_ROW = f"({', '.join('?' * len(REQUEST_COLUMNS))})"
SELECT_ATTEMPTS = "SELECT attempt_log FROM ledger_requests WHERE id = ?"
PRUNE = "DELETE FROM ledger_requests WHERE ts < ?"
# The request log's columns: all but the content and the attempts (read for one request).
LIST_COLUMNS = tuple(c for c in REQUEST_COLUMNS if c not in ("prompt", "completion", "attempt_log"))

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


@functools.lru_cache(maxsize=8)
def insert_requests(count: int) -> str:
    """One INSERT of `count` rows (parameters row after row). A batch in one statement binds
    its values in one call: on SQLite's worker thread that is one hand-over of the GIL per
    statement, not one per row, which on a busy event loop costs more than the insert."""
    return (
        f"INSERT INTO ledger_requests ({', '.join(REQUEST_COLUMNS)}) VALUES "
        + ", ".join([_ONE_ROW] * count)
        + " ON CONFLICT (id) DO NOTHING"
    )


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
    columns = REQUEST_COLUMNS if content else LIST_COLUMNS
    sql = f"SELECT {', '.join(columns)} FROM ledger_requests{clause} ORDER BY ts DESC, id DESC LIMIT ?"
    params.append(int(limit))
    return (numbered(sql) if dialect == "postgresql" else sql), params


def request_dict(row: Sequence[Any]) -> dict[str, Any]:
    out = dict(zip(REQUEST_COLUMNS, row, strict=False))
    for flag in _FLAGS:
        out[flag] = bool(out[flag])
    out["tags"] = orjson.loads(out["tags"]) if out["tags"] else {}
    if "attempt_log" in out:
        out["attempt_log"] = attempt_dicts(out["attempt_log"])
    return out


def attempt_dicts(text: str | None) -> list[dict[str, Any]]:
    """`attempt_log` as the API shows it: one object per attempt."""
    if not text:
        return []
    return [dict(zip(ATTEMPT_FIELDS, attempt, strict=True)) for attempt in orjson.loads(text)]


__all__ = [
    "ATTEMPT_FIELDS",
    "ROWS_PER_INSERT",
    "PRUNE",
    "LIST_COLUMNS",
    "REQUEST_COLUMNS",
    "SELECT_ATTEMPTS",
    "Dialect",
    "attempt_dicts",
    "insert_requests",
    "numbered",
    "request_dict",
    "requests_query",
    "usage_query",
    "usage_row",
    "where",
]
