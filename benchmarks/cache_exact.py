"""Exact cache: lookup latency (memory, Redis) and hit vs miss throughput at 16 connections.

    python -m benchmarks.cache_exact [--redis redis://127.0.0.1:6379/2] [--seconds 5]

Lookup = what a hit costs the cache itself: the key (canonical JSON + SHA-256), the store
read and the entry's decode and checks, over 10k stored entries, measured in process.
Throughput: `asgi-llm serve` (1 worker) with a memory cache before the benchmark's nginx
upstream (benchmarks.upstream); wrk at 16 connections sends the same body (hits) or the
same body with `cache-control: no-cache` (misses: upstream call, then stored again).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from asgi_llm.cache.entry import decode_entry, new_entry
from asgi_llm.cache.keys import cache_key
from asgi_llm.cache.store import CacheStore, MemoryStore, RedisStore
from benchmarks.load import run_wrk, write_script
from benchmarks.procs import ProcessGroup, free_port, wait_for_port
from benchmarks.upstream import CHAT_COMPLETION, MODEL, start_upstream

ROOT = Path(__file__).resolve().parent.parent
ENTRIES = 10_000
LOOKUPS = 20_000


def request(i: int) -> dict[str, Any]:
    return {
        "model": MODEL,
        "temperature": 0,
        "max_tokens": 200,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant. Answer briefly."},
            {"role": "user", "content": f"Question number {i}: what is the capital of country {i}?"},
        ],
    }


async def lookup_latency(store: CacheStore, prefix: str) -> dict[str, float]:
    response = json.loads(CHAT_COMPLETION)
    for i in range(ENTRIES):
        key = cache_key("tenant:bench", MODEL, "chat", request(i))
        await store.set(key.storage_key(prefix), new_entry(key.digest, "chat", response).encode(), 600)
    timings = []
    for n in range(LOOKUPS):
        payload = request(n % ENTRIES)
        started = time.perf_counter()
        key = cache_key("tenant:bench", MODEL, "chat", payload)
        raw = await store.get(key.storage_key(prefix))
        assert raw is not None
        decode_entry(raw, key.digest, "chat")
        timings.append(time.perf_counter() - started)
    timings.sort()
    return {
        "p50_ms": statistics.median(timings) * 1e3,
        "p99_ms": timings[int(len(timings) * 0.99)] * 1e3,
        "max_ms": timings[-1] * 1e3,
    }


async def lookups(redis_url: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    memory = MemoryStore(max_entries=ENTRIES * 2, max_bytes=1 << 30)
    out["memory"] = await lookup_latency(memory, "bench")
    await memory.aclose()
    if redis_url:
        redis_store = RedisStore(redis_url, timeout_s=1.0)
        prefix = f"bench:{os.urandom(4).hex()}"
        try:
            out["redis"] = await lookup_latency(redis_store, prefix)
        finally:
            await redis_store.purge(f"{prefix}:*")
            await redis_store.aclose()
    return out


def throughput(seconds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, ProcessGroup(Path(tmp)) as procs:
        workdir = Path(tmp)
        upstream = start_upstream(procs, workdir, None, sys.executable)
        port = free_port()
        config = {
            "models": [
                {
                    "name": MODEL,
                    "deployments": [
                        {
                            "id": "bench",
                            "provider": "openai-compatible",
                            "model": MODEL,
                            "base_url": upstream.url + "/v1",
                            "api_key": "sk-bench",
                        }
                    ],
                }
            ],
            "cache": {"backend": "memory://"},
        }
        (workdir / "proxy.json").write_text(json.dumps(config))
        proxy = procs.start(
            "proxy",
            [
                sys.executable,
                "-m",
                "asgi_llm",
                "serve",
                "--port",
                str(port),
                "--config",
                str(workdir / "proxy.json"),
            ],
            cwd=ROOT,
        )
        wait_for_port(proxy, port)
        body = json.dumps(request(1))
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        results: dict[str, Any] = {"upstream": upstream.kind}
        for name, headers in (("hit", {}), ("miss", {"cache-control": "no-cache"})):
            script = write_script(
                workdir / f"{name}.lua", body, {"content-type": "application/json", **headers}
            )
            run_wrk(url, script, 16, 1)  # warm-up (and, for hits, the first store)
            result = run_wrk(url, script, 16, seconds)
            results[name] = {
                "rps": result.rps,
                "p50_ms": result.p50_ms,
                "p99_ms": result.p99_ms,
                "errors": result.errors,
            }
        results["hit_over_miss"] = results["hit"]["rps"] / results["miss"]["rps"]
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/2"))
    parser.add_argument("--no-redis", action="store_true")
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    report = {
        "lookup": asyncio.run(lookups(None if args.no_redis else args.redis)),
        "throughput_16_connections": throughput(args.seconds),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
