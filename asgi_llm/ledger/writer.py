"""LedgerWriter: records from the request path to the database, in batches, off that path.

    request's finally ──put()──► queue (bounded: `queue_size`) ──► batch ──► store.write()
                                                                   │ failed
                                                                   ▼
                                                 spill (bounded: `spill_max`), retried first

`put` is the only thing a request pays: a length check and an append. A full queue drops the
record and counts it; nothing waits. The writer task takes up to `batch_size` records every
`flush_interval_s` (sooner when a batch is ready) and writes them in one transaction. When the
database fails, the batch goes to the spill and the queue keeps draining into it, so a short
outage loses nothing; retries back off up to MAX_BACKOFF_S, the outage is logged once when it
starts and once when it ends, and only what is past both bounds is dropped. Writes are
idempotent by record id, so a batch that timed out but landed is not doubled by its retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable

from asgi_llm.config.schema import Ledger as LedgerSettings
from asgi_llm.ledger.record import LedgerRecord
from asgi_llm.ledger.store import LedgerStore

log = logging.getLogger("asgi_llm.ledger")

MIN_BACKOFF_S = 0.1
MAX_BACKOFF_S = 5.0
PRUNE_EVERY_S = 3600.0
DAY_S = 86400.0


class LedgerWriter:
    def __init__(
        self,
        settings: Callable[[], LedgerSettings | None],
        store: Callable[[], Awaitable[LedgerStore]],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`settings` reads the current `ledger:` section; `store` opens (or returns) the
        store it names, migrated."""
        self._settings = settings
        self._store = store
        self._clock = clock
        self.queue: deque[LedgerRecord] = deque()
        self.spill: deque[LedgerRecord] = deque()
        self.queue_size = 10_000
        self.batch_size = 500
        self.written = 0
        self.dropped_queue = 0  # the queue was full
        self.dropped_spill = 0  # the database was down and the spill was full
        self.down_since: float | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_prune: float | None = None
        self._stopped = False  # after stop(): records still put wait, no task is started
        self.after_flush: Callable[[], None] | None = None  # e.g. metrics: what was written, dropped

    @property
    def dropped(self) -> int:
        return self.dropped_queue + self.dropped_spill

    # -- the request path ---------------------------------------------------------------
    def put(self, record: LedgerRecord) -> None:
        queue = self.queue
        if len(queue) >= self.queue_size:
            self.dropped_queue += 1
            return
        queue.append(record)
        if len(queue) == self.batch_size:
            self._wake.set()
        if self._task is None and not self._stopped:
            self.start()

    def configure(self, settings: LedgerSettings) -> None:
        self.queue_size = settings.queue_size
        self.batch_size = settings.batch_size

    # -- the writer task ------------------------------------------------------------------
    def start(self) -> None:
        self._stopped = False
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="asgi-llm ledger writer")

    async def _run(self) -> None:
        backoff = 0.0
        while True:
            try:
                backoff = await self._turn(backoff)
            except Exception:  # noqa: BLE001 - a bug here must not end the writer for good
                log.exception("ledger: the writer's turn failed; it goes on")
                backoff = MAX_BACKOFF_S

    async def _turn(self, backoff: float) -> float:
        """Wait for a batch (or the interval, or the backoff), write what waits; the next
        backoff."""
        settings = self._settings()
        interval = settings.flush_interval_s if settings is not None else 1.0
        if backoff:
            await asyncio.sleep(backoff)  # no early wake while the database is down
        elif len(self.queue) < self.batch_size:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)
        self._wake.clear()
        if settings is None:
            return backoff
        if await self.flush(settings):
            backoff = 0.0
            await self._prune(settings)
        else:
            backoff = min(max(backoff * 2, MIN_BACKOFF_S), MAX_BACKOFF_S)
        if self.after_flush is not None:
            self.after_flush()
        return backoff

    async def flush(self, settings: LedgerSettings) -> bool:
        """Write everything waiting, the spill (oldest) first. False when the database failed:
        the failed batch and what the queue held (up to `spill_max`) wait in the spill."""
        while self.spill or self.queue:
            source = self.spill if self.spill else self.queue
            batch = [source.popleft() for _ in range(min(len(source), settings.batch_size))]
            try:
                # Opening is bounded by the store's own connect timeouts; a migration it
                # runs first may take longer than one write, and must not be cut short.
                store = await self._store()
                await asyncio.wait_for(store.write(batch), settings.timeout_s)
            except asyncio.CancelledError:
                self.spill.extendleft(reversed(batch))  # shutdown: the final drain writes it
                raise
            except Exception as exc:  # noqa: BLE001 - any database failure: keep, retry later
                self._keep(batch, settings.spill_max)
                self._outage(exc)
                return False
            self.written += len(batch)
            self._recovered()
        return True

    def _keep(self, batch: list[LedgerRecord], spill_max: int) -> None:
        spill = self.spill
        spill.extendleft(reversed(batch))
        while self.queue and len(spill) < spill_max:
            spill.append(self.queue.popleft())
        while len(spill) > spill_max:  # the newest go: the oldest have waited longest
            spill.pop()
            self.dropped_spill += 1

    def _outage(self, exc: Exception) -> None:
        if self.down_since is None:
            self.down_since = self._clock()
            # One line per outage, with the error's class only: a driver's message may quote
            # the URL, and the URL may hold a password.
            log.warning(
                "ledger: the database is unavailable (%s); records wait in memory (%d) and are "
                "retried; requests are not affected",
                type(exc).__name__,
                len(self.spill),
            )

    def _recovered(self) -> None:
        if self.down_since is not None:
            log.warning(
                "ledger: the database answers again after %.1fs; %d records dropped so far",
                self._clock() - self.down_since,
                self.dropped,
            )
            self.down_since = None

    async def _prune(self, settings: LedgerSettings) -> None:
        if settings.retention_days is None:
            return
        now = self._clock()
        if self._last_prune is not None and now - self._last_prune < PRUNE_EVERY_S:
            return
        self._last_prune = now
        try:
            store = await self._store()
            removed = await asyncio.wait_for(
                store.prune(time.time() - settings.retention_days * DAY_S), settings.timeout_s * 10
            )
        except Exception as exc:  # noqa: BLE001 - retried at the next interval
            log.warning("ledger: pruning old records failed (%s)", type(exc).__name__)
            return
        if removed:
            log.info("ledger: pruned %d records older than %s days", removed, settings.retention_days)

    async def stop(self, settings: LedgerSettings | None) -> None:
        """Stop the task, then write what waits, for at most `drain_timeout_s`."""
        self._stopped = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if settings is None or not (self.queue or self.spill):
            return
        waiting = len(self.queue) + len(self.spill)
        try:
            done = await asyncio.wait_for(self.flush(settings), settings.drain_timeout_s)
        except TimeoutError:
            done = False
        if not done:
            lost = len(self.queue) + len(self.spill)
            self.dropped_spill += lost
            log.warning("ledger: %d of %d records could not be written before exit", lost, waiting)


__all__ = ["LedgerWriter"]
