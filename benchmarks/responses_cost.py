"""What one request costs the stack's own code, in process: chat completions against the
Responses API (translated), JSON and streamed, through the full default stack with the
offline mock provider (the same upstream work for both), driven by raw ASGI calls so no HTTP
client or server is measured. Rounds are interleaved; medians and p90 in µs of CPU-bound
wall time per request.

python -m benchmarks.responses_cost
PYTHONPATH=<another checkout> python -m benchmarks.responses_cost --only chat   # compare trees
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from typing import Any

import orjson

from asgi_llm import Config, build_app

CONFIG = {
    "models": [{"name": "m", "deployments": [{"id": "m", "provider": "mock", "model": "m"}]}],
    "auth": {
        "api_keys": [
            {
                "id": "k",
                "key_sha256": "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                "roles": ["user"],
            }
        ],
        "roles": {"user": {"models": ["*"], "endpoints": ["*"]}},
    },
    "limits": {"rules": [{"per": "key", "requests": "1000000/minute", "tokens": "1000000000/minute"}]},
    "metrics": {"prometheus": {"path": "/metrics"}},
}
KEY = b"test"  # sha256 above
MESSAGES = [{"role": "user", "content": "Say hello to the benchmark"}]
WORKLOADS: dict[str, tuple[str, dict[str, Any]]] = {
    "chat": ("/v1/chat/completions", {"model": "m", "messages": MESSAGES}),
    "chat-stream": ("/v1/chat/completions", {"model": "m", "messages": MESSAGES, "stream": True}),
    "responses": ("/v1/responses", {"model": "m", "input": MESSAGES}),
    "responses-stream": ("/v1/responses", {"model": "m", "input": MESSAGES, "stream": True}),
    "responses-nostore": ("/v1/responses", {"model": "m", "input": MESSAGES, "store": False}),
}


async def one(app: Any, path: str, body: bytes) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"authorization", b"Bearer " + KEY),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    sent = False
    done = asyncio.Event()
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif not message.get("more_body", False):
            done.set()

    await app(scope, receive, send)
    done.set()
    return status


async def measure(names: list[str], rounds: int, per_round: int) -> dict[str, list[float]]:
    app = build_app(Config.from_dict(CONFIG))
    samples: dict[str, list[float]] = {name: [] for name in names}
    bodies = {name: (WORKLOADS[name][0], orjson.dumps(WORKLOADS[name][1])) for name in names}
    for name in names:  # warm up every path once (pools, derived config, imports)
        path, body = bodies[name]
        for _ in range(50):
            assert await one(app, path, body) == 200, name
    gc.collect()
    for _ in range(rounds):
        for name in names:
            path, body = bodies[name]
            for _ in range(per_round):
                start = time.perf_counter()
                await one(app, path, body)
                samples[name].append((time.perf_counter() - start) * 1e6)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(WORKLOADS), help="comma-separated workloads")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--per-round", type=int, default=200)
    args = parser.parse_args()
    names = [name for name in args.only.split(",") if name]
    samples = asyncio.run(measure(names, args.rounds, args.per_round))
    base = statistics.median(samples[names[0]])
    print(f"| workload | median µs | p90 µs | vs {names[0]} |\n|---|---|---|---|")
    for name in names:
        values = sorted(samples[name])
        median = statistics.median(values)
        print(f"| {name} | {median:.0f} | {values[int(len(values) * 0.9)]:.0f} | {median / base:.2f}x |")


if __name__ == "__main__":
    main()
