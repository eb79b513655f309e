"""The LedgerStore protocol, and the shapes of its queries.

A store is a database the ledger writes batches to and the admin API reads from. Two ship
(sqlite.py, postgres.py); both speak the SQL of sql.py, so they answer every query alike.
Writes are idempotent by record id: a batch retried after a timeout never doubles a record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from asgi_llm.ledger.record import LedgerRecord

GroupBy = Literal["key", "tenant", "model", "deployment", "day", "hour"]
GROUPS: tuple[str, ...] = ("key", "tenant", "model", "deployment", "day", "hour")


@dataclass(frozen=True, slots=True)
class Filters:
    """What both queries filter on; None is "any". `start` inclusive, `end` exclusive (UTC
    epoch seconds)."""

    start: float | None = None
    end: float | None = None
    key: str | None = None
    tenant: str | None = None
    model: str | None = None
    deployment: str | None = None
    status: int | None = None
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page of the request log ended: the last record's time and id."""

    ts: float
    id: str


class LedgerStore(Protocol):
    async def migrate(self) -> int:
        """Bring the schema to the latest version (idempotent, safe with replicas starting
        at once); the version now in force."""

    async def write(self, records: Sequence[LedgerRecord]) -> None:
        """Insert a batch (and its attempts) in one transaction; records already there
        (same id) are skipped. Raises when the database cannot be reached."""

    async def usage(self, group_by: GroupBy, filters: Filters) -> list[dict[str, Any]]:
        """One row per group: counts, token sums, cost, savings, mean latency."""

    async def requests(
        self, filters: Filters, limit: int, before: Cursor | None, *, content: bool = False
    ) -> list[dict[str, Any]]:
        """Up to `limit` records, newest first, older than `before`; with `content`, the
        stored prompt and completion too."""

    async def attempts(self, record_id: str) -> list[dict[str, Any]]:
        """The upstream attempts of one record, in order."""

    async def prune(self, before: float) -> int:
        """Delete records older than `before` (epoch seconds); how many went."""

    async def aclose(self) -> None: ...


__all__ = ["GROUPS", "Cursor", "Filters", "GroupBy", "LedgerStore"]
