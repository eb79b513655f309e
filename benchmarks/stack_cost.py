"""What each feature of the full default stack costs per request, in process: `asgi-llm
serve`'s app (RequestGuard around build_app) called with raw ASGI messages, on uvloop, with
an upstream transport that answers at once (no network, no HTTP server, no HTTP client), so
only the stack's own code is timed. Each variant is the full stack of `benchmarks.run`
(`proxy-full`) with one section removed; `hit` answers from the cache. Rounds are
interleaved; medians of µs of CPU per request.

    python -m benchmarks.stack_cost
    python -m benchmarks.stack_cost --only full,hit --rounds 20
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time
from typing import Any

from asgi_llm import Config, build_app
from asgi_llm.auth import hash_key
from asgi_llm.providers.transport import UpstreamRequest, UpstreamResponse
from asgi_llm.server import RequestGuard
from asgi_llm.server.workers import freeze_startup_objects
from benchmarks.upstream import CHAT_COMPLETION, MODEL, REQUEST_BODY

KEY = "sk-bench-0123456789"
SECTIONS: dict[str, Any] = {
    "auth": {
        "api_keys": [{"id": "bench", "key_sha256": hash_key(KEY), "roles": ["user"]}],
        "roles": {"user": {"models": ["*"], "endpoints": ["chat", "completions", "embeddings", "models"]}},
    },
    "limits": {
        "storage": "memory://",
        "rules": [{"per": "key", "requests": "100000000/minute", "tokens": "100000000000/minute"}],
    },
    "metrics": {"prometheus": {}},
    "cache": {"backend": "memory://"},
}
MODELS = [
    {
        "name": MODEL,
        "deployments": [
            {
                "id": "up",
                "provider": "openai-compatible",
                "model": MODEL,
                "base_url": "http://upstream.invalid/v1",
                "api_key": "sk-upstream",
            }
        ],
    }
]
# name: (sections left out of the full stack, cache hit)
VARIANTS: dict[str, tuple[tuple[str, ...], bool]] = {
    "full": ((), False),
    "hit": ((), True),
    "idle": (tuple(SECTIONS), False),
    "no-auth": (("auth",), False),
    "no-limits": (("limits",), False),
    "no-metrics": (("metrics",), False),
    "no-cache": (("cache",), False),
}
ANSWER = CHAT_COMPLETION.encode()


class InstantResponse:
    status_code = 200
    headers = {"content-type": "application/json"}  # noqa: RUF012

    async def aiter_bytes(self) -> Any:
        yield ANSWER

    async def aclose(self) -> None:
        pass


class InstantTransport:
    """An UpstreamTransport that answers every request with the benchmark's completion."""

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        return InstantResponse()  # type: ignore[return-value]

    async def aclose(self) -> None:
        pass


def scope_for(body: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"authorization", b"Bearer " + KEY.encode()),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def one(app: Any, body: bytes) -> int:
    done = asyncio.Event()
    status = 0
    sent = False

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

    await app(scope_for(body), receive, send)
    done.set()
    return status


def build(left_out: tuple[str, ...]) -> Any:
    config = {"models": MODELS, **{k: v for k, v in SECTIONS.items() if k not in left_out}}
    stack = build_app(Config.from_dict(config), transport_factory=lambda deployment: InstantTransport())
    return RequestGuard(stack, access_log=False)


async def measure(names: list[str], rounds: int, per_round: int) -> dict[str, list[float]]:
    apps = {name: build(VARIANTS[name][0]) for name in names}
    samples: dict[str, list[float]] = {name: [] for name in names}
    counter = 0

    def body_for(name: str) -> bytes:
        nonlocal counter
        if VARIANTS[name][1]:
            return REQUEST_BODY.encode()
        counter += 1  # every body differs: the cache misses
        return REQUEST_BODY.replace("Say hello", f"Say hello {counter}").encode()

    for name in names:
        for _ in range(200):
            assert await one(apps[name], body_for(name)) == 200, name
    freeze_startup_objects()  # the collector as `asgi-llm serve` sets it
    for _ in range(rounds):
        for name in names:
            app = apps[name]
            bodies = [body_for(name) for _ in range(per_round)]
            start = time.process_time()  # CPU time: another process on the core is not counted
            for body in bodies:
                await one(app, body)
            samples[name].append((time.process_time() - start) / per_round * 1e6)
    return samples


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(VARIANTS), help="comma-separated variants")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--per-round", type=int, default=500)
    args = parser.parse_args(argv)
    logging.getLogger("asgi_llm").setLevel(logging.ERROR)
    names = [name for name in args.only.split(",") if name]
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        samples = runner.run(measure(names, args.rounds, args.per_round))
    full = statistics.median(samples[names[0]])
    print(f"| variant | µs per request (median) | vs {names[0]} |\n|---|---:|---:|")
    for name in names:
        median = statistics.median(samples[name])
        print(f"| {name} | {median:.1f} | {median - full:+.1f} |")


if __name__ == "__main__":
    main()
