"""Cursor paging of the admin listings sorted by id (`GET /admin/keys`, `GET /admin/teams`):
`limit` (default 100, at most 1000) and `after=<id>` (the `next` of the page before), the
answer `{"data": [...], "next": <id>|null}` as `GET /admin/requests` gives it."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from asgi_llm.errors import InvalidRequest
from asgi_llm.types import Scope

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
PAGING = frozenset({"limit", "after"})


def listing_query(scope: Scope, allowed: frozenset[str]) -> dict[str, str]:
    """A listing's parameters, each given once; an unknown one is a 400 naming it."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    out: dict[str, str] = {}
    for name, values in query.items():
        if name not in allowed | PAGING:
            raise InvalidRequest(f"Unknown parameter {name!r}.", param=name, code="unknown_parameter")
        if len(values) > 1:
            raise InvalidRequest(f"Give '{name}' once.", param=name)
        out[name] = values[0]
    return out


def flag(query: dict[str, str], name: str) -> bool | None:
    """`true`/`false` (absent: None)."""
    text = query.get(name)
    if text is None:
        return None
    if text not in ("true", "false"):
        raise InvalidRequest(f"'{name}' must be true or false.", param=name)
    return text == "true"


def paged(rows: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
    """One page of `rows` (sorted here by id): those after `after`, at most `limit`."""
    text = query.get("limit", "")
    if text == "":
        limit = DEFAULT_LIMIT
    elif text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_LIMIT:
        limit = int(text)
    else:
        raise InvalidRequest(f"'limit' must be an integer from 1 to {MAX_LIMIT}.", param="limit")
    after = query.get("after")
    if after is not None and not 0 < len(after) <= 128:
        raise InvalidRequest("'after' must be an id of the listing (the 'next' it gave).", param="after")
    ordered = sorted(rows, key=lambda row: row["id"])
    if after is not None:
        ordered = [row for row in ordered if row["id"] > after]
    page = ordered[:limit]
    following = page[-1]["id"] if len(ordered) > limit else None
    return {"data": page, "next": following}


__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "flag", "listing_query", "paged"]
