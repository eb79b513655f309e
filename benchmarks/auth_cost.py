"""Added cost of AuthMiddleware per request, in process (no sockets): µs per request.

    python -m benchmarks.auth_cost

Each variant drives the same stack (exchange + AuthMiddleware + an inner app that answers at
once) N times; the difference to the no-auth run is auth's own cost.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import orjson

from asgi_llm import AuthMiddleware, Config
from asgi_llm.auth import hash_key
from tests.fakes.idp import AUDIENCE, ISSUER, FakeIdP

N = 20_000
BODY = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hello"}]})


async def inner(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def config(auth: dict[str, Any] | None) -> Config:
    data: dict[str, Any] = {
        "models": [{"name": "m", "deployments": [{"id": "m", "provider": "mock", "model": "m"}]}]
    }
    if auth is not None:
        data["auth"] = auth
    return Config.from_dict(data)


async def run(app: Any, token: str | None, n: int) -> list[float]:
    headers = [(b"content-type", b"application/json")]
    if token:
        headers.append((b"authorization", b"Bearer " + token.encode()))
    timings = []

    async def send(message: Any) -> None:
        pass

    for _ in range(n):
        sent = False

        async def receive() -> Any:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": BODY, "more_body": False}
            await asyncio.sleep(3600)

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/v1/chat/completions",
            "headers": headers,
            "query_string": b"",
            "root_path": "",
        }
        start = time.perf_counter()
        await app(scope, receive, send)
        timings.append(time.perf_counter() - start)
    return timings


async def main() -> None:
    roles = {"user": {"models": ["*"], "endpoints": ["*"]}}
    with FakeIdP() as idp:
        variants = {
            "no auth": (config(None), None),
            "api key": (
                config(
                    {
                        "api_keys": [{"id": "a", "key_sha256": hash_key("sk-bench-key"), "roles": ["user"]}],
                        "roles": roles,
                    }
                ),
                "sk-bench-key",
            ),
            "jwt (cached)": (
                config(
                    {
                        "jwt": {"jwks_url": idp.url + "/jwks.json", "issuer": ISSUER, "audience": AUDIENCE},
                        "roles": roles,
                    }
                ),
                idp.token(),
            ),
        }
        results = {}
        for name, (cfg, token) in variants.items():
            app = AuthMiddleware(inner, config=cfg)
            await run(app, token, 2000)  # warm-up (JWKS fetch, caches)
            samples = []
            for _ in range(3):  # interleaving would need three apps; repeat and take the best median
                samples.append(statistics.median(await run(app, token, N)) * 1e6)
            results[name] = min(samples)
            await app.shutdown()
    base = results["no auth"]
    print("| variant | median µs/request | added by auth (µs) |\n|---|---|---|")
    for name, value in results.items():
        print(f"| {name} | {value:.1f} | {value - base:+.1f} |")


if __name__ == "__main__":
    asyncio.run(main())
