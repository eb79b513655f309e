"""SQLiteStore: the embedded default, a file and no server.

Stdlib `sqlite3` on one worker thread that owns the one connection: no new dependency
(`make run` installs the core only), and the same design aiosqlite has (a thread per
connection) without a future per row: a batch is one call on the thread, one transaction.
WAL journal and a busy timeout let several worker processes share the file.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import chain
from pathlib import Path
from typing import Any, TypeVar

from asgi_llm.ledger import rollup, sql
from asgi_llm.ledger.migrations import LATEST, statements, version_table
from asgi_llm.ledger.record import LedgerRecord
from asgi_llm.ledger.store import Cursor, Filters, GroupBy

T = TypeVar("T")
_ADD_SUMS = rollup.add_sums("sqlite", "ledger_requests WHERE rowid > ?")


class SQLiteStore:
    dialect: sql.Dialect = "sqlite"

    def __init__(self, path: str, *, timeout_s: float = 5.0) -> None:
        self.path = path
        self.timeout_s = timeout_s
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="asgi-llm-ledger-sqlite")
        self._conn: sqlite3.Connection | None = None

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, work)

    def _call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._conn = conn
        return work(self._conn)

    async def migrate(self) -> int:
        def work(conn: sqlite3.Connection) -> int:
            conn.execute(version_table("sqlite"))
            row = conn.execute("SELECT MAX(version) FROM ledger_schema_version").fetchone()
            current: int = row[0] or 0
            for version in range(current + 1, LATEST + 1):
                for statement in statements("sqlite", version):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO ledger_schema_version (version, applied_at) VALUES (?, ?)",
                    (version, time.time()),
                )
            return max(current, LATEST)

        return await self._run(_in_transaction(work))

    async def write(self, records: Sequence[LedgerRecord]) -> None:
        # The rows' values flattened here, on the event loop, so the worker thread spends its
        # time in SQLite's C code (which lets the GIL go) and not in Python. A record is its
        # row (record.py).
        step = sql.ROWS_PER_INSERT
        inserts = [
            (sql.insert_requests(len(chunk)), list(chain.from_iterable(chunk)))
            for chunk in (records[start : start + step] for start in range(0, len(records), step))
        ]

        def work(conn: sqlite3.Connection) -> None:
            # Under the write lock, the rows inserted now are those past the largest rowid:
            # the rollup sums them, and not the records skipped as stored already.
            last = conn.execute("SELECT MAX(rowid) FROM ledger_requests").fetchone()[0]
            for statement, values in inserts:
                conn.execute(statement, values)
            conn.execute(_ADD_SUMS, (last or 0,))

        await self._run(_in_transaction(work))

    async def _select(self, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return await self._run(lambda conn: conn.execute(query, tuple(params)).fetchall())

    async def usage(self, group_by: GroupBy, filters: Filters) -> list[dict[str, Any]]:
        return await rollup.usage(self._select, "sqlite", group_by, filters)

    async def requests(
        self, filters: Filters, limit: int, before: Cursor | None, *, content: bool = False
    ) -> list[dict[str, Any]]:
        query, params = sql.requests_query("sqlite", filters, limit, before, content=content)
        return [sql.request_dict(row) for row in await self._select(query, params)]

    async def attempts(self, record_id: str) -> list[dict[str, Any]]:
        rows = await self._select(sql.SELECT_ATTEMPTS, (record_id,))
        return sql.attempt_dicts(rows[0][0]) if rows else []

    async def prune(self, before: float) -> int:
        def work(conn: sqlite3.Connection) -> int:
            conn.execute(rollup.PRUNE, (before,))
            return conn.execute(sql.PRUNE, (before,)).rowcount

        return await self._run(_in_transaction(work))

    async def aclose(self) -> None:
        def close(conn: sqlite3.Connection) -> None:
            conn.close()

        if self._conn is not None:
            await self._run(close)
            self._conn = None
        self._executor.shutdown(wait=False)


def _in_transaction(work: Callable[[sqlite3.Connection], T]) -> Callable[[sqlite3.Connection], T]:
    """`work` in one transaction that takes the write lock first (`BEGIN IMMEDIATE`: two
    processes never both read, then both write)."""

    def run(conn: sqlite3.Connection) -> T:
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = work(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    return run


__all__ = ["SQLiteStore"]
