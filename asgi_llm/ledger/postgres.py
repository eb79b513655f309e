"""PostgresStore: the ledger of a fleet, on PostgreSQL through asyncpg (extra `postgres`).

The one module that imports asyncpg. A small pool (writes are batched: one connection is
busy at a time in steady state; the others serve the admin queries). Every operation has
the configured timeout; a database that cannot be reached raises, and the writer keeps the
batch for later (writer.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from asgi_llm.ledger import rollup, sql
from asgi_llm.ledger.migrations import ADVISORY_LOCK_ID, LATEST, statements, version_table
from asgi_llm.ledger.record import LedgerRecord
from asgi_llm.ledger.store import Cursor, Filters, GroupBy

POOL_MAX = 4
# A migration (and the wait for another replica's) may take longer than one write: a backfill.
MIGRATION_TIMEOUT_S = 600.0
# A batch is copied (COPY, binary) straight into the table, and its hourly sums upserted:
# no Bind and Execute per row (a quarter of executemany's CPU on the client), and a third
# less work for the server than going through a temporary table. COPY knows no ON CONFLICT:
# a batch holding an id stored already (a retry after a timeout) fails whole, and is then
# copied into a temporary table of the session (emptied at commit) and inserted from it in
# one statement that skips the stored ids and adds to the rollup only the rows it inserted.
_BATCH = "ledger_batch"
_CREATE_BATCH = f"CREATE TEMPORARY TABLE IF NOT EXISTS {_BATCH} (LIKE ledger_requests) ON COMMIT DELETE ROWS"
_COLUMNS = ", ".join(sql.REQUEST_COLUMNS)
_INSERT_BATCH = (
    f"WITH new AS (INSERT INTO ledger_requests ({_COLUMNS}) SELECT {_COLUMNS} FROM {_BATCH}"
    f" ON CONFLICT (id) DO NOTHING RETURNING {', '.join(rollup.SUMMED_COLUMNS)}) "
    + rollup.add_sums("postgresql", "new")
)
_UPSERT_HOURLY = sql.numbered(rollup.UPSERT)
_SELECT_ATTEMPTS = sql.numbered(sql.SELECT_ATTEMPTS)
_PRUNE = sql.numbered(sql.PRUNE)
_PRUNE_HOURLY = sql.numbered(rollup.PRUNE)


def _asyncpg() -> Any:
    try:
        import asyncpg
    except ImportError:  # pragma: no cover - the schema accepts the URL; the extra is missing
        raise RuntimeError(
            "ledger.url is a postgresql:// URL but asyncpg is not installed: pip install 'asgi-llm[postgres]'"
        ) from None
    return asyncpg


class PostgresStore:
    dialect: sql.Dialect = "postgresql"

    def __init__(self, url: str, *, timeout_s: float = 5.0) -> None:
        self._url = url  # never logged: it may hold a password
        self.timeout_s = timeout_s
        self._pool: Any = None

    async def _get_pool(self) -> Any:
        if self._pool is None:
            asyncpg = _asyncpg()
            self._pool = await asyncpg.create_pool(
                self._url,
                min_size=0,  # no floor to restore while the database is down
                max_size=POOL_MAX,
                timeout=self.timeout_s,
                command_timeout=self.timeout_s,
            )
        return self._pool

    async def migrate(self) -> int:
        pool = await self._get_pool()
        async with pool.acquire(timeout=self.timeout_s) as conn, conn.transaction():
            # Replicas starting at once queue here; each then finds what the first applied.
            wait = MIGRATION_TIMEOUT_S
            await conn.execute(f"SELECT pg_advisory_xact_lock({ADVISORY_LOCK_ID})", timeout=wait)
            await conn.execute(version_table("postgresql"))
            current = await conn.fetchval("SELECT MAX(version) FROM ledger_schema_version") or 0
            for version in range(current + 1, LATEST + 1):
                for statement in statements("postgresql", version):
                    await conn.execute(statement, timeout=wait)
                await conn.execute(
                    "INSERT INTO ledger_schema_version (version, applied_at) VALUES ($1, $2)",
                    version,
                    time.time(),
                )
        return max(int(current), LATEST)

    async def write(self, records: Sequence[LedgerRecord]) -> None:
        pool = await self._get_pool()
        # Plain tuples: asyncpg's COPY reads a tuple subclass (a record) twice as slowly.
        rows = list(map(tuple, records))
        async with pool.acquire(timeout=self.timeout_s) as conn:
            try:
                async with conn.transaction():
                    await conn.copy_records_to_table(
                        "ledger_requests", records=rows, columns=sql.REQUEST_COLUMNS
                    )
                    await conn.executemany(_UPSERT_HOURLY, rollup.hourly_rows(records))
                return
            except _asyncpg().UniqueViolationError:
                pass  # some are stored already: rolled back, written again skipping those
            async with conn.transaction():
                await conn.execute(_CREATE_BATCH)  # a no-op but the first time on a connection
                await conn.copy_records_to_table(_BATCH, records=rows, columns=sql.REQUEST_COLUMNS)
                await conn.execute(_INSERT_BATCH)

    async def _select(self, query: str, params: Sequence[Any]) -> list[Any]:
        pool = await self._get_pool()
        return list(await pool.fetch(query, *params, timeout=self.timeout_s))

    async def usage(self, group_by: GroupBy, filters: Filters) -> list[dict[str, Any]]:
        return await rollup.usage(self._select, "postgresql", group_by, filters)

    async def requests(
        self, filters: Filters, limit: int, before: Cursor | None, *, content: bool = False
    ) -> list[dict[str, Any]]:
        query, params = sql.requests_query("postgresql", filters, limit, before, content=content)
        return [sql.request_dict(tuple(row)) for row in await self._select(query, params)]

    async def attempts(self, record_id: str) -> list[dict[str, Any]]:
        rows = await self._select(_SELECT_ATTEMPTS, (record_id,))
        return sql.attempt_dicts(rows[0][0]) if rows else []

    async def prune(self, before: float) -> int:
        pool = await self._get_pool()
        async with pool.acquire(timeout=self.timeout_s) as conn, conn.transaction():
            await conn.execute(_PRUNE_HOURLY, before)
            status = await conn.execute(_PRUNE, before)  # "DELETE <n>"
        return int(status.rpartition(" ")[2] or 0)

    async def aclose(self) -> None:
        """Close gracefully within the timeout, else cut the connections (a stalled database
        must not hold a shutdown)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), self.timeout_s)
            except Exception:  # noqa: BLE001 - timed out or broken: cut what is left
                pool.terminate()


__all__ = ["PostgresStore"]
