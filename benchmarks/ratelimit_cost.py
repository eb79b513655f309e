"""What RateLimitMiddleware adds to one request, in process, and how many Redis round trips.

    python -m benchmarks.ratelimit_cost            # 5,000 requests per case
    python -m benchmarks.ratelimit_cost -n 20000

Each case calls the ASGI app directly (no HTTP client, no socket to the proxy) with a
trivial terminal app, so the difference between "RateLimit > terminal" and a bare layer
running the same request exchange is the limiter's own cost. Redis cases run against a
redis-server started here on a free port (never a shared one), and read its command
statistics before and after: `evalsha` calls are round trips, and nothing else is sent.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from typing import Any

import orjson
import redis

from asgi_llm import Config, LLMLayer
from asgi_llm.ratelimit import RateLimitMiddleware
from benchmarks.procs import free_port, port_open

BODY = orjson.dumps(
    {
        "model": "mock-1",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "Say hello"}],
    }
)
RESPONSE = b'{"ok":true}'


async def terminal(scope: Any, receive: Any, send: Any) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": RESPONSE})


async def call(app: Any, n: int) -> list[float]:
    """Per-request wall time (µs) of `n` sequential requests through `app`."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "root_path": "",
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(BODY)).encode()),
        ],
    }
    times = []
    for _ in range(n):
        client = _Client()
        started = time.perf_counter_ns()
        await app({**scope, "state": {}}, client.receive, client.send)
        times.append((time.perf_counter_ns() - started) / 1000)
        assert client.statuses == [200], client.statuses
    return times


class _Client:
    """One request's ASGI receive/send: the body once, then a client that stays."""

    def __init__(self) -> None:
        self.sent = False
        self.statuses: list[int] = []

    async def receive(self) -> dict[str, Any]:
        if not self.sent:
            self.sent = True
            return {"type": "http.request", "body": BODY, "more_body": False}
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.statuses.append(message["status"])


def config(storage: str, strategy: str, tokens: bool) -> Config:
    rule: dict[str, Any] = {"per": "key", "requests": "1000000000/hour"}
    if tokens:
        rule["tokens"] = "1000000000000/hour"
    return Config.from_dict(
        {
            "models": [
                {
                    "name": "mock-1",
                    "deployments": [{"id": "m", "provider": "mock", "model": "mock-1"}],
                }
            ],
            "limits": {
                "storage": storage,
                "strategy": strategy,
                "rules": [rule],
                "key_prefix": f"bench-{os.getpid()}",
            },
        }
    )


def redis_calls(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


async def measure(
    n: int, storage: str, strategy: str, tokens: bool, stats: redis.Redis | None
) -> dict[str, Any]:
    cfg = config(storage, strategy, tokens)
    bare = LLMLayer(terminal, config=cfg)
    limited = RateLimitMiddleware(terminal, config=cfg)
    await limited.startup()
    try:
        await call(bare, 500)
        await call(limited, 500)  # warm-up: connections, script load
        before = redis_calls(stats) if stats is not None else {}
        with_limiter, without = [], []
        for _ in range(5):  # interleaved rounds: drift hits both alike
            with_limiter += await call(limited, n // 5)
            without += await call(bare, n // 5)
        after = redis_calls(stats) if stats is not None else {}
    finally:
        await limited.shutdown()
    sent = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    client_calls = {
        k: v for k, v in sent.items() if k in ("evalsha", "eval", "script|load", "ping", "hgetall")
    }
    return {
        "case": f"{storage.split(':')[0]:6} {strategy:23} {'req+tokens' if tokens else 'requests':10}",
        "added_p50_us": statistics.median(with_limiter) - statistics.median(without),
        "with_p50_us": statistics.median(with_limiter),
        "bare_p50_us": statistics.median(without),
        "round_trips_per_request": (sum(client_calls.values()) / n) if stats is not None else 0,
    }


async def measure_all(n: int, port: int) -> list[dict[str, Any]]:
    stats = redis.Redis(port=port)
    rows = []
    try:
        for strategy in ("moving-window", "fixed-window", "sliding-window-counter"):
            for tokens in (False, True):
                rows.append(await measure(n, "memory://", strategy, tokens, None))
                rows.append(await measure(n, f"redis://127.0.0.1:{port}/0", strategy, tokens, stats))
    finally:
        stats.close()
    return rows


def main(n: int) -> None:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="bench-redis-")
    server = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not port_open(port):
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)
        rows = asyncio.run(measure_all(n, port))
    finally:
        server.kill()
        server.wait()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"{'case':62} {'added µs':>9} {'with µs':>8} {'bare µs':>8} {'RTT/req':>8}")
    for row in rows:
        print(
            f"{row['case']:62} {row['added_p50_us']:9.1f} {row['with_p50_us']:8.1f} "
            f"{row['bare_p50_us']:8.1f} {row['round_trips_per_request']:8.2f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5000, help="requests per case")
    main(parser.parse_args().n)
