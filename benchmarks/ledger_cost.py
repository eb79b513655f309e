"""What the usage ledger costs per request, in process (docs/ledger.md): the full stack of
`benchmarks.stack_cost` without a ledger, with one on SQLite (a temporary file) and with one on
PostgreSQL (a fresh database on the server BENCH_LEDGER_PG names, default the local one;
skipped when it does not answer). Each round's records are written before its clock stops,
so the figure is the request's share plus the writer's (CPU of every thread of the process).
PostgreSQL's own work is in other processes: when they run on this machine (a local server),
the `server` column is their CPU during the PostgreSQL rounds (every process named
`postgres`: the backends, the WAL writer, the checkpointer). Rounds are interleaved; medians
of µs per request.

    python -m benchmarks.ledger_cost
    python -m benchmarks.ledger_cost --rounds 20
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import tempfile
import time
from typing import Any

from asgi_llm import Config, build_app
from asgi_llm.server import RequestGuard
from asgi_llm.server.workers import freeze_startup_objects
from benchmarks.stack_cost import MODELS, SECTIONS, InstantTransport, one
from benchmarks.upstream import REQUEST_BODY


def fresh_pg_database(name: str) -> str:
    """The URL of database `name`, dropped and made again on the PostgreSQL server
    BENCH_LEDGER_PG names (a URL without the database; default the local one)."""
    server = os.environ.get("BENCH_LEDGER_PG", "postgresql://postgres@127.0.0.1:5432")
    import asyncpg

    async def fresh() -> None:
        conn = await asyncpg.connect(f"{server}/postgres", timeout=5)
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            await conn.execute(f"CREATE DATABASE {name}")
        finally:
            await conn.close()

    asyncio.run(fresh())
    return f"{server}/{name}"


def ledgers(workdir: str) -> dict[str, dict[str, Any] | None]:
    try:
        postgres: dict[str, Any] | None = {"url": fresh_pg_database("asgi_llm_bench_ledger_cost")}
    except Exception as exc:  # noqa: BLE001 - reported, the variant left out
        print(f"postgres: skipped ({type(exc).__name__}: the server does not answer)")
        postgres = None
    variants = {"off": None, "sqlite": {"url": f"sqlite:///{workdir}/ledger.db"}}
    return {**variants, "postgres": postgres} if postgres else variants


def postgres_cpu() -> float | None:
    """CPU seconds used so far by the processes named `postgres` on this machine (None: none
    visible)."""
    total, found = 0.0, False
    tick = os.sysconf("SC_CLK_TCK")
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as stat:
                name, _, rest = stat.read().partition(") ")
        except OSError:  # gone, or not readable
            continue
        if name.endswith("(postgres"):
            fields = rest.split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
            found = True
    return total if found else None


async def measure(
    variants: dict[str, dict[str, Any] | None], rounds: int, per_round: int
) -> tuple[dict[str, list[float]], list[float]]:
    stacks = {}
    for name, ledger in variants.items():
        config = {"models": MODELS, **SECTIONS, **({"ledger": ledger} if ledger else {})}
        stack = build_app(Config.from_dict(config), transport_factory=lambda deployment: InstantTransport())
        await stack.services.ledger.startup()
        stacks[name] = (stack, RequestGuard(stack, access_log=False))
    samples: dict[str, list[float]] = {name: [] for name in stacks}
    server: list[float] = []  # the local PostgreSQL's µs per request, per round
    counter = 0

    async def run(name: str, count: int) -> float:
        nonlocal counter
        stack, app = stacks[name]
        bodies = []
        for _ in range(count):
            counter += 1  # every body differs: the cache misses
            bodies.append(REQUEST_BODY.replace("Say hello", f"Say hello {counter}").encode())
        ledger = stack.services.ledger
        server_start = postgres_cpu() if name == "postgres" else None
        start = time.process_time()
        for body in bodies:
            await one(app, body)
        settings = ledger.settings()
        if settings is not None:
            assert await ledger.writer.flush(settings), f"{name}: the write failed"
        spent = (time.process_time() - start) / count * 1e6
        server_end = postgres_cpu() if server_start is not None else None
        if server_start is not None and server_end is not None:
            server.append((server_end - server_start) / count * 1e6)
        return spent

    for name in stacks:
        await run(name, 200)
    server.clear()
    freeze_startup_objects()
    for _ in range(rounds):
        for name in stacks:
            samples[name].append(await run(name, per_round))
    for stack, _ in stacks.values():
        await stack.services.ledger.shutdown()
    return samples, server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--per-round", type=int, default=500)
    args = parser.parse_args(argv)
    logging.getLogger("asgi_llm").setLevel(logging.ERROR)
    import uvloop

    with (
        tempfile.TemporaryDirectory() as workdir,
        asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
    ):
        samples, server = runner.run(measure(ledgers(workdir), args.rounds, args.per_round))
    off = statistics.median(samples["off"])
    print("| ledger | µs per request (median) | vs off | server µs per request (local PostgreSQL) |")
    print("|---|---:|---:|---:|")
    for name, values in samples.items():
        median = statistics.median(values)
        extra = f"{statistics.mean(server):.1f}" if name == "postgres" and server else ""
        print(f"| {name} | {median:.1f} | {median - off:+.1f} | {extra} |")


if __name__ == "__main__":
    main()
