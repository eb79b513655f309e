"""The usage ledger: one record per finished LLM request (and one per upstream attempt in
it), written off the request path to SQLite or PostgreSQL and queried by the admin API.

    record.py      LedgerRecord / AttemptRecord, read once off the finished context
    writer.py      the bounded queue, batches, spill, retries and retention
    service.py     the Ledger service (in `Services`): the "request finished" listener, the store
    store.py       the LedgerStore protocol and the queries' shapes
    sql.py         the SQL both backends share
    sqlite.py      the embedded default (stdlib sqlite3 in a worker thread)
    postgres.py    PostgreSQL through asyncpg (extra `postgres`)
    migrations.py  versioned schema, applied at startup and by `asgi-llm migrate`
    rollup.py      the hourly sums the usage queries read whole hours from

docs/ledger.md says what is recorded, how to query it and how it fails.
"""
