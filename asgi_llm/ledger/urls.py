"""`ledger.url`: which database the ledger writes to, parsed once when the config loads.

`sqlite:///relative/path.db`, `sqlite:////absolute/path.db` (the embedded default: a file,
no server) or `postgresql://[user[:password]@]host[:port]/database` (`postgres://` too).
Messages never repeat the URL: it may hold a password.
"""

from __future__ import annotations

from typing import Literal, NamedTuple
from urllib.parse import unquote, urlsplit

from asgi_llm.config.urls import check_host

SCHEMES = ("sqlite", "postgresql", "postgres")


class LedgerURL(NamedTuple):
    kind: Literal["sqlite", "postgresql"]
    path: str  # sqlite: the file; postgresql: the URL as given (asyncpg reads it)


def parse_ledger_url(value: str) -> LedgerURL:
    """The backend a `ledger.url` names, or ValueError saying what is wrong."""
    scheme, sep, rest = value.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in SCHEMES:
        raise ValueError(
            "must be sqlite:///path/to/file.db (embedded) or postgresql://user@host:5432/database"
        )
    if scheme == "sqlite":
        if not rest.startswith("/") or len(rest) < 2:
            raise ValueError("a sqlite URL names a file: sqlite:///relative.db or sqlite:////absolute.db")
        path = unquote(rest[1:].partition("?")[0])
        if not path or path.endswith("/"):
            raise ValueError("a sqlite URL names a file, not a directory")
        return LedgerURL("sqlite", path)
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError for a port that is not a number in range
    except ValueError:
        raise ValueError("not a valid postgresql:// URL (check the host and port)") from None
    if not parts.hostname:
        raise ValueError("a postgresql:// URL needs a host: postgresql://user@host:5432/database")
    if not parts.hostname.startswith("/"):
        check_host(parts.hostname)
    if port == 0:
        raise ValueError("invalid port 0")
    if not parts.path.strip("/"):
        raise ValueError("a postgresql:// URL needs a database: postgresql://user@host:5432/database")
    return LedgerURL("postgresql", value)


def check_ledger_url(value: str) -> str:
    parse_ledger_url(value)
    return value


__all__ = ["LedgerURL", "check_ledger_url", "parse_ledger_url"]
