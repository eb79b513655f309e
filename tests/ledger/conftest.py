"""Ledger fixtures: a real PostgreSQL (a fresh database per test session, dropped at the
end) and SQLite files; `store` runs a test on both."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from asgi_llm.config.schema import Ledger as LedgerSettings
from asgi_llm.ledger.record import AttemptRecord, LedgerRecord, encode_attempts, encode_tags
from asgi_llm.ledger.service import open_store
from asgi_llm.ledger.store import LedgerStore

PG_HOST = os.environ.get("ASGI_LLM_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("ASGI_LLM_PG_PORT", "5432"))
PG_ADMIN_URL = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/test"


def _require_pg() -> bool:
    return os.environ.get("CI") == "true" or os.environ.get("ASGI_LLM_REQUIRE_REDIS") == "1"


async def _admin(statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL, timeout=3)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """`postgresql://...` of a database made for this session (dropped at its end).

    Locally the PostgreSQL tests skip with a reason when none answers; in CI (CI=true or
    ASGI_LLM_REQUIRE_REDIS=1, which .ci/run sets) they fail instead."""
    name = f"asgi_llm_ledger_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_admin(f"CREATE DATABASE {name}"))
    except Exception as exc:  # noqa: BLE001 - reported as skip or failure below
        if _require_pg():
            pytest.fail(f"PostgreSQL required (CI) but {PG_HOST}:{PG_PORT} does not answer: {exc!r}")
        pytest.skip(f"no PostgreSQL on {PG_HOST}:{PG_PORT}: {exc!r}")
    try:
        yield f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        asyncio.run(_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture
def pg_url(pg_database: str) -> Iterator[str]:
    """The session's database, emptied before each test."""

    async def empty() -> None:
        import asyncpg

        conn = await asyncpg.connect(pg_database, timeout=3)
        try:
            await conn.execute("DROP TABLE IF EXISTS ledger_requests, ledger_hourly, ledger_schema_version")
        finally:
            await conn.close()

    asyncio.run(empty())
    yield pg_database


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A ledger URL of each backend (the PostgreSQL one fresh for the test)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/ledger.db"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
async def store(ledger_url: str) -> AsyncIterator[LedgerStore]:
    made = open_store(LedgerSettings(url=ledger_url))
    await made.migrate()
    try:
        yield made
    finally:
        await made.aclose()


def record(n: int, **fields: Any) -> LedgerRecord:
    """A record with plain values; `fields` override them (`tags` a dict, `attempt_log`
    AttemptRecords: encoded as the record holds them)."""
    values: dict[str, Any] = {
        "id": f"rec-{n:06d}",
        "request_id": f"req-{n}",
        "ts": 1_800_000_000.0 + n,
        "key_id": "alice",
        "tenant": "team-a",
        "user": None,
        "endpoint": "chat",
        "model_asked": "m1",
        "model": "m1",
        "deployment": "m1-0",
        "status": 200,
        "error_type": None,
        "error_code": None,
        "attempts": 1,
        "cache": "miss",
        "cache_kind": None,
        "stream": False,
        "input_tokens": 10,
        "output_tokens": 5,
        "cached_tokens": 0,
        "cache_write_tokens": 0,
        "cache_write_1h_tokens": 0,
        "reasoning_tokens": 0,
        "cost_usd": 0.001,
        "saved_usd": 0.0,
        "latency_ms": 20.0,
        "upstream_ms": 15.0,
        "ttft_ms": None,
        "client_gone": False,
        "tags": {},
        "prompt": None,
        "completion": None,
        "attempt_log": (AttemptRecord(1, "m1-0", "m1", 1.0, 14.0, 200, None, None),),
    }
    values.update(fields)
    values["tags"] = encode_tags(values["tags"])
    values["attempt_log"] = encode_attempts(values["attempt_log"])
    return LedgerRecord(**values)
