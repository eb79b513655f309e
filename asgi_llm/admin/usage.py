"""The ledger's query API: `GET /admin/usage?group_by=...`, `GET /admin/requests` and
`GET /admin/requests/{request_id}`, in JSON or CSV (`format=csv`). docs/ledger.md.

A tenant's admin (its principal has a `tenant`) sees its own tenant only, whatever filter it
passes. Parameters are checked strictly: a bad or unknown one is a 400 naming it.
"""

from __future__ import annotations

import base64
import csv
import io
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import orjson

from asgi_llm.context import LLMContext, Principal
from asgi_llm.errors import InvalidRequest, ServiceUnavailable
from asgi_llm.ledger.sql import LIST_COLUMNS, USAGE_FIELDS
from asgi_llm.ledger.store import GROUPS, Cursor, Filters, LedgerStore
from asgi_llm.types import Headers, Scope

if TYPE_CHECKING:
    from asgi_llm.ledger.service import Ledger

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_FILTERS = ("from", "to", "key", "tenant", "team", "model", "deployment")
_USAGE_PARAMS = frozenset({"group_by", "format", *_FILTERS})
_REQUEST_PARAMS = frozenset({"limit", "before", "status", "request_id", "format", *_FILTERS})
# The request log's fields, in the order of a CSV's columns: the stored columns (less the
# record id), `ts` as an ISO 8601 `time`, `user_id` as `user`.
_RENAMED = {"ts": "time", "user_id": "user"}
REQUEST_FIELDS = tuple(_RENAMED.get(column, column) for column in LIST_COLUMNS if column != "id")


@dataclass(frozen=True, slots=True)
class RawBody:
    """An admin answer that is not JSON (a CSV export)."""

    body: bytes
    content_type: bytes
    headers: Headers


class LedgerQueries:
    """The admin actions that read the ledger. `ledger` is the service `build_app` made."""

    def __init__(self, ledger: Ledger | None) -> None:
        self.ledger = ledger

    async def _store(self) -> LedgerStore:
        store = None
        try:
            store = await self.ledger.query_store() if self.ledger is not None else None
        except Exception:  # noqa: BLE001 - any database failure: the caller may retry
            raise _unavailable() from None
        if store is None:
            raise InvalidRequest(
                "No ledger is configured (the `ledger:` section).", status=404, code="ledger_not_configured"
            )
        return store

    async def usage(self, ctx: LLMContext, scope: Scope, principal: Principal) -> tuple[int, Any]:
        query = _query(scope, _USAGE_PARAMS)
        group_by = query.get("group_by", "")
        group_by = "tenant" if group_by == "team" else group_by
        if group_by not in GROUPS:
            choices = ", ".join(GROUPS)
            raise InvalidRequest(f"'group_by' must be one of {choices} (or team).", param="group_by")
        filters = _filters(query, principal)
        store = await self._store()
        try:
            rows = await store.usage(group_by, filters)  # type: ignore[arg-type]
        except Exception:  # noqa: BLE001
            raise _unavailable() from None
        if query.get("format") == "csv":
            return 200, _csv(USAGE_FIELDS, rows, [])
        return 200, {"data": rows, "group_by": group_by, "from": _iso(filters.start), "to": _iso(filters.end)}

    async def requests(self, ctx: LLMContext, scope: Scope, principal: Principal) -> tuple[int, Any]:
        query = _query(scope, _REQUEST_PARAMS)
        filters = _filters(query, principal)
        limit = _int(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT) or DEFAULT_LIMIT
        before = _cursor(query["before"]) if "before" in query else None
        store = await self._store()
        try:
            rows = await store.requests(filters, limit + 1, before)
        except Exception:  # noqa: BLE001
            raise _unavailable() from None
        page, more = rows[:limit], len(rows) > limit
        following = _encode_cursor(page[-1]) if more and page else None
        data = [_public(row) for row in page]
        if query.get("format") == "csv":
            headers = [(b"x-llm-next", following.encode())] if following else []
            return 200, _csv(REQUEST_FIELDS, data, headers)
        return 200, {"data": data, "next": following}

    async def request(self, ctx: LLMContext, scope: Scope, principal: Principal) -> tuple[int, Any]:
        request_id = ctx.model or ""  # the route's {request_id}
        ctx.model = None  # not a model name: nothing downstream may resolve it
        if not request_id or len(request_id) > 256:
            raise InvalidRequest("The path must name a request id.", param="request_id")
        filters = _filters({}, principal, request_id=request_id)
        store = await self._store()
        try:
            rows = await store.requests(filters, 1, None, content=True)
        except Exception:  # noqa: BLE001
            raise _unavailable() from None
        if not rows:
            raise InvalidRequest(
                f"No request {request_id!r} in the ledger.", status=404, code="request_not_found"
            )
        row = rows[0]
        record = _public(row)
        record["attempt_log"] = row.get("attempt_log") or []
        record["prompt"], record["completion"] = row.get("prompt"), row.get("completion")
        return 200, record


def _query(scope: Scope, allowed: frozenset[str]) -> dict[str, str]:
    raw = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    query: dict[str, str] = {}
    for name, values in raw.items():
        if name not in allowed:
            raise InvalidRequest(f"Unknown parameter {name!r}.", param=name)
        if len(values) > 1:
            raise InvalidRequest(f"{name!r} is given more than once.", param=name)
        query[name] = values[0]
    if query.get("format", "json") not in ("json", "csv"):
        raise InvalidRequest("'format' must be json or csv.", param="format")
    return query


def _filters(query: dict[str, str], principal: Principal, *, request_id: str | None = None) -> Filters:
    start, end = _time(query, "from"), _time(query, "to")
    if start is not None and end is not None and start > end:
        raise InvalidRequest("'from' is after 'to'.", param="from")
    tenant = query.get("tenant") or query.get("team") or None
    if principal.tenant is not None:  # a tenant's admin sees its own tenant, whatever it asks
        tenant = principal.tenant
    status = _int(query, "status", None, 0, 599)
    return Filters(
        start=start,
        end=end,
        key=query.get("key") or None,
        tenant=tenant,
        model=query.get("model") or None,
        deployment=query.get("deployment") or None,
        status=status,
        request_id=request_id or query.get("request_id") or None,
    )


def _time(query: dict[str, str], name: str) -> float | None:
    """ISO 8601 (`2026-12-05`, `2026-12-05T08:00:00Z`; no zone is UTC) or epoch seconds."""
    text = query.get(name)
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidRequest(f"'{name}' must be an ISO 8601 time or epoch seconds.", param=name) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    if not math.isfinite(value) or not 0 <= value < 1e11:
        raise InvalidRequest(f"'{name}' is out of range.", param=name)
    return value


def _int(query: dict[str, str], name: str, default: int | None, low: int, high: int) -> int | None:
    text = query.get(name)
    if text is None or text == "":
        return default
    if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
        raise InvalidRequest(f"'{name}' must be an integer from {low} to {high}.", param=name)
    return int(text)


def _encode_cursor(row: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([row["ts"], row["id"]])).decode().rstrip("=")


def _cursor(text: str) -> Cursor:
    try:
        ts, record_id = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        if not isinstance(ts, (int, float)) or not isinstance(record_id, str):
            raise ValueError
    except (ValueError, TypeError):
        raise InvalidRequest("'before' is not a cursor this API gave.", param="before") from None
    return Cursor(float(ts), record_id)


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _public(row: dict[str, Any]) -> dict[str, Any]:
    """A stored row as the API shows it (REQUEST_FIELDS)."""
    out = {_RENAMED.get(column, column): row.get(column) for column in LIST_COLUMNS if column != "id"}
    out["time"] = _iso(row["ts"])
    return out


def _csv(fields: tuple[str, ...], rows: list[dict[str, Any]], headers: Headers) -> RawBody:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(fields)
    for row in rows:
        writer.writerow([_cell(row.get(name)) for name in fields])
    return RawBody(buffer.getvalue().encode(), b"text/csv; charset=utf-8", headers)


def _cell(value: Any) -> Any:
    if isinstance(value, dict):
        value = orjson.dumps(value).decode() if value else ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value  # a spreadsheet would run it as a formula (CSV injection)
    return "" if value is None else value


def _unavailable() -> ServiceUnavailable:
    return ServiceUnavailable(
        "The ledger's database is unavailable; try again shortly.", code="ledger_unavailable", retry_after=1
    )


__all__ = ["REQUEST_FIELDS", "LedgerQueries", "RawBody"]
