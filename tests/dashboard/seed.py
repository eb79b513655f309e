"""A ledger seeded with known records: two teams, their keys, two models, over six days."""

from __future__ import annotations

import asyncio
import random
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from asgi_llm.ledger.record import AttemptRecord, LedgerRecord, encode_attempts
from asgi_llm.ledger.sqlite import SQLiteStore

TEAMS = {"a": ("key-a1", "key-a2"), "b": ("key-b1",)}
MODELS = {"m1": "m1-d", "m2": "m2-d"}


def records(count: int, *, now: float | None = None, days: float = 6.0, seed: int = 7) -> list[LedgerRecord]:
    """`count` records spread over the last `days` (never older), some failed, some cache hits."""
    rng = random.Random(seed)
    now = time.time() if now is None else now
    out = []
    for n in range(count):
        tenant = rng.choice(sorted(TEAMS))
        key = rng.choice(TEAMS[tenant])
        model = rng.choice(sorted(MODELS))
        failed = rng.random() < 0.05
        hit = not failed and rng.random() < 0.2
        tokens_in, tokens_out = rng.randint(10, 2000), 0 if failed else rng.randint(1, 800)
        cost = 0.0 if failed or hit else round(tokens_in * 1e-6 + tokens_out * 3e-6, 8)
        latency = rng.uniform(20, 900)
        stream = not hit and rng.random() < 0.3
        out.append(
            LedgerRecord(
                id=f"seed-{seed}-{n}",
                request_id=f"req-{seed}-{n}",
                ts=now - 60 - rng.uniform(0, days * 86400 - 120),
                key_id=key,
                tenant=tenant,
                user=None,
                endpoint="chat",
                model_asked=model,
                model=model,
                deployment=MODELS[model],
                status=502 if failed else 200,
                error_type="upstream_error" if failed else None,
                error_code="bad_gateway" if failed else None,
                attempts=1,
                cache="hit" if hit else "miss",
                cache_kind="exact" if hit else None,
                stream=stream,
                input_tokens=tokens_in,
                output_tokens=tokens_out,
                cached_tokens=0,
                cache_write_tokens=0,
                cache_write_1h_tokens=0,
                reasoning_tokens=0,
                cost_usd=cost,
                saved_usd=round(tokens_in * 1e-6 + tokens_out * 3e-6, 8) if hit else 0.0,
                latency_ms=latency,
                upstream_ms=None if hit else latency * 0.9,
                ttft_ms=latency * 0.3 if stream and not failed else None,
                client_gone=False,
                tags=None,
                prompt=None,
                completion=None,
                attempt_log=None
                if hit
                else encode_attempts(
                    [
                        AttemptRecord(
                            1, MODELS[model], model, 1.0, latency * 0.9, 502 if failed else 200, None, None
                        )
                    ]
                ),
            )
        )
    return out


def seed_sqlite(path: Path, rows: list[LedgerRecord], batch: int = 5000) -> None:
    async def run() -> None:
        store = SQLiteStore(str(path))
        try:
            await store.migrate()
            for start in range(0, len(rows), batch):
                await store.write(rows[start : start + batch])
        finally:
            await store.aclose()

    # A thread of its own: Playwright's sync API keeps an event loop running in this one.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, run()).result()
