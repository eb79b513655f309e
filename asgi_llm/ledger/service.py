"""Ledger: the usage ledger as one of the process's services (app.py `Services`).

It listens on the "request finished" hook (asgi_llm/metrics/finished.py) while the config has a
`ledger:` section, opens the store `ledger.url` names (migrating it), runs the writer, and
answers the admin API's queries. The lifespan owner starts it and, at shutdown (SIGTERM
included: `asgi-llm serve` turns it into a lifespan shutdown), stops it after the layers, so
what is queued is written before the process exits (for at most `ledger.drain_timeout_s`).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable

from asgi_llm.config.loader import Config
from asgi_llm.config.manager import ConfigManager
from asgi_llm.config.schema import Ledger as LedgerSettings
from asgi_llm.context import LLMContext
from asgi_llm.exchange import RequestIds
from asgi_llm.ledger.record import build_record, watch_answer
from asgi_llm.ledger.store import LedgerStore
from asgi_llm.ledger.urls import parse_ledger_url
from asgi_llm.ledger.writer import LedgerWriter
from asgi_llm.metrics.record import RequestRecord
from asgi_llm.redact import redact_url_passwords
from asgi_llm.types import Scope, Send

log = logging.getLogger("asgi_llm.ledger")


def open_store(settings: LedgerSettings) -> LedgerStore:
    """The store `ledger.url` names (not yet connected)."""
    url = parse_ledger_url(settings.url)
    if url.kind == "sqlite":
        from asgi_llm.ledger.sqlite import SQLiteStore

        return SQLiteStore(url.path, timeout_s=settings.timeout_s)
    from asgi_llm.ledger.postgres import PostgresStore

    return PostgresStore(url.path, timeout_s=settings.timeout_s)


class Ledger:
    """The "request finished" listener, the writer and the query side of the ledger."""

    def __init__(
        self, configs: ConfigManager, *, store_factory: Callable[[LedgerSettings], LedgerStore] = open_store
    ) -> None:
        self.configs = configs
        self._factory = store_factory
        self._store: LedgerStore | None = None
        self._store_url: str | None = None
        self._opening = asyncio.Lock()
        self._ids = RequestIds()
        self.writer = LedgerWriter(self.settings, self.store)
        self.writer.after_flush = self.report_counts
        self._reported = (0, 0)  # (written, dropped) already counted in metrics
        self.on_counts: Callable[[int, int], None] | None = None  # metrics: (written, dropped) deltas

    def settings(self) -> LedgerSettings | None:
        return self.configs.current.ledger

    # -- the "request finished" hook --------------------------------------------------------
    def enabled(self, config: Config) -> bool:
        if config.ledger is not None:
            self.writer.configure(config.ledger)
            return True
        return False

    def observe(self, ctx: LLMContext, send: Send) -> Send:
        """With `store_content`, the answer is copied aside as it passes (for `completion`)."""
        settings = ctx.config.ledger
        if settings is None or not settings.store_content or ctx.endpoint.startswith("admin"):
            return send
        return watch_answer(ctx, send)

    def finished(self, scope: Scope, ctx: LLMContext, record: RequestRecord) -> None:
        settings = ctx.config.ledger
        if settings is None or ctx.endpoint.startswith("admin"):
            return  # admin calls are audited (auth/audit.py), not usage
        if ctx.principal is None and ctx.config.auth is not None:
            # Refused before a caller was known (401): not usage, and a flood of them must
            # not fill the database; auth's failure log and metrics count them.
            return
        self.writer.put(build_record(self._ids.new(), scope, ctx, record, settings))

    # -- the store --------------------------------------------------------------------------
    async def store(self) -> LedgerStore:
        """The store the current config names, opened and migrated (reopened when a reload
        changed `ledger.url`)."""
        settings = self.settings()
        if settings is None:
            raise RuntimeError("no ledger is configured")
        store = self._store
        if store is not None and self._store_url == settings.url:
            return store
        async with self._opening:
            if self._store is not None and self._store_url == settings.url:
                return self._store
            fresh = self._factory(settings)
            try:
                await fresh.migrate()
            except BaseException:
                await fresh.aclose()
                raise
            old, self._store, self._store_url = self._store, fresh, settings.url
            if old is not None:
                await old.aclose()
            return fresh

    async def query_store(self) -> LedgerStore | None:
        """The store for the admin API's queries; None when no ledger is configured."""
        return await self.store() if self.settings() is not None else None

    def report_counts(self) -> None:
        """Hand the metrics what was written and dropped since the last call."""
        written, dropped = self.writer.written, self.writer.dropped
        done_w, done_d = self._reported
        if self.on_counts is not None and (written, dropped) != (done_w, done_d):
            self._reported = (written, dropped)
            self.on_counts(written - done_w, dropped - done_d)

    # -- lifespan -------------------------------------------------------------------------
    async def startup(self) -> None:
        settings = self.settings()
        if settings is None:
            return
        self.writer.configure(settings)
        try:
            await self.store()
        except Exception as exc:  # noqa: BLE001 - the writer retries; requests go on
            log.warning(
                "ledger: the database cannot be opened at startup (%s); records wait in memory and are "
                "retried",
                type(exc).__name__,
            )
        self.writer.start()

    async def shutdown(self) -> None:
        await self.writer.stop(self.settings())
        self.report_counts()
        store, self._store = self._store, None
        if store is not None:
            await store.aclose()


def migrate_command(config: Config) -> int:
    """`asgi-llm migrate`: apply the ledger's pending migrations; the exit status."""
    settings = config.ledger
    if settings is None:
        print(f"error: {config.source}: no ledger: section, nothing to migrate", file=sys.stderr)
        return 1
    where = redact_url_passwords(settings.url)

    async def run() -> int:
        store = open_store(settings)
        try:
            return await asyncio.wait_for(store.migrate(), settings.timeout_s * 6)
        finally:
            await store.aclose()

    try:
        version = asyncio.run(run())
    except Exception as exc:  # noqa: BLE001 - reported, never with the URL's password
        print(f"error: {where}: {type(exc).__name__}: {redact_url_passwords(str(exc))}", file=sys.stderr)
        return 1
    print(f"ok: {where}: ledger schema at version {version}")
    return 0


__all__ = ["Ledger", "migrate_command", "open_store"]
