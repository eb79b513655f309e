"""The ledger's schema, version by version.

Each migration is a list of statements; `schema_version` records which are applied (one row
per version, with when). A store applies what is missing in one transaction that holds the
database's lock first (PostgreSQL: a transaction-scoped advisory lock; SQLite: `BEGIN
IMMEDIATE`), so replicas starting at once apply each version exactly once and the others
find it done. Applied at startup and by `asgi-llm migrate`. Never edit a shipped version:
add the next one.
"""

from __future__ import annotations

from asgi_llm.ledger import rollup
from asgi_llm.ledger.sql import Dialect

# Any constant: the advisory lock every asgi-llm process takes to migrate one database.
ADVISORY_LOCK_ID = 0x61736769_6C6C6D  # "asgillm"

_TYPES: dict[Dialect, dict[str, str]] = {
    "sqlite": {
        "float": "REAL",
        "bigint": "INTEGER",
        "int": "INTEGER",
        "hour_of_ts": rollup.HOUR_OF_TS["sqlite"],
    },
    "postgresql": {
        "float": "DOUBLE PRECISION",
        "bigint": "BIGINT",
        "int": "INTEGER",
        "hour_of_ts": rollup.HOUR_OF_TS["postgresql"],
    },
}

SCHEMA_VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS ledger_schema_version"
    " (version INTEGER PRIMARY KEY, applied_at {float} NOT NULL)"
)

_V1 = [
    """CREATE TABLE IF NOT EXISTS ledger_requests (
        id TEXT PRIMARY KEY,
        request_id TEXT NOT NULL,
        ts {float} NOT NULL,
        key_id TEXT,
        tenant TEXT,
        user_id TEXT,
        endpoint TEXT NOT NULL,
        model_asked TEXT,
        model TEXT,
        deployment TEXT,
        status {int} NOT NULL,
        error_type TEXT,
        error_code TEXT,
        attempts {int} NOT NULL DEFAULT 0,
        cache TEXT,
        cache_kind TEXT,
        stream {int} NOT NULL DEFAULT 0,
        input_tokens {bigint} NOT NULL DEFAULT 0,
        output_tokens {bigint} NOT NULL DEFAULT 0,
        cached_tokens {bigint} NOT NULL DEFAULT 0,
        cache_write_tokens {bigint} NOT NULL DEFAULT 0,
        cache_write_1h_tokens {bigint} NOT NULL DEFAULT 0,
        reasoning_tokens {bigint} NOT NULL DEFAULT 0,
        cost_usd {float} NOT NULL DEFAULT 0,
        saved_usd {float} NOT NULL DEFAULT 0,
        latency_ms {float} NOT NULL DEFAULT 0,
        upstream_ms {float},
        ttft_ms {float},
        client_gone {int} NOT NULL DEFAULT 0,
        tags TEXT,
        prompt TEXT,
        completion TEXT,
        attempt_log TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS ledger_requests_ts ON ledger_requests (ts)",
    "CREATE INDEX IF NOT EXISTS ledger_requests_tenant_ts ON ledger_requests (tenant, ts)",
    "CREATE INDEX IF NOT EXISTS ledger_requests_key_ts ON ledger_requests (key_id, ts)",
    "CREATE INDEX IF NOT EXISTS ledger_requests_model_ts ON ledger_requests (model, ts)",
    "CREATE INDEX IF NOT EXISTS ledger_requests_request_id ON ledger_requests (request_id)",
]

# Version 2: the hourly rollup the usage queries read (ledger/rollup.py).
MIGRATIONS: tuple[list[str], ...] = (_V1, rollup.MIGRATION)  # version n is MIGRATIONS[n - 1]
LATEST = len(MIGRATIONS)


def statements(dialect: Dialect, version: int) -> list[str]:
    """The statements of one version, in the dialect's types."""
    types = _TYPES[dialect]
    return [statement.format(**types) for statement in MIGRATIONS[version - 1]]


def version_table(dialect: Dialect) -> str:
    return SCHEMA_VERSION_TABLE.format(**_TYPES[dialect])


__all__ = ["ADVISORY_LOCK_ID", "LATEST", "MIGRATIONS", "statements", "version_table"]
