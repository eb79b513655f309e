"""Fixtures for the rate-limit tests: a stack with a test-only auth layer, Redis on db 1
under a unique key prefix per test (deleted afterwards), and a Redis server a test owns."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx2
import pytest
import redis

from asgi_llm import Config, LLMLayer, Principal, ProviderApp, RouterMiddleware
from asgi_llm.context import LLMContext
from asgi_llm.ratelimit import RateLimitMiddleware
from asgi_llm.request import header
from asgi_llm.types import Receive, Scope, Send
from tests.harness import free_port

REDIS_DB = 1
USER = [{"role": "user", "content": "Say hello"}]  # mock-1: 2 prompt + 6 completion tokens
PROMPT_ESTIMATE = len("Say hello") // 4 + 1  # what the exchange estimates for USER


def chat(max_tokens: int | None = 100, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "mock-1", "messages": USER, **extra}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    return body


def priced_mock(
    name: str = "mock-1", *, input_per_mtok: float = 0.0, output_per_mtok: float = 0.0
) -> dict[str, Any]:
    return {
        "name": name,
        "deployments": [
            {
                "id": f"{name}-d",
                "provider": "mock",
                "model": name,
                "cost": {"input_per_mtok": input_per_mtok, "output_per_mtok": output_per_mtok},
            }
        ],
    }


class HeaderAuth(LLMLayer):
    """Test-only stand-in for AuthMiddleware: `x-test-key: id[@tenant]` sets the principal."""

    async def handle(self, ctx: LLMContext, scope: Scope, receive: Receive, send: Send) -> None:
        raw = header(scope, b"x-test-key")
        if raw:
            key_id, _, tenant = raw.decode().partition("@")
            ctx.principal = Principal(id=key_id, tenant=tenant or None)
        await self.app(scope, receive, send)


@pytest.fixture
def prefix() -> str:
    return f"rl-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def redis_url(redis_available: str, prefix: str) -> Iterator[str]:
    """Redis db 1; every key under this test's prefix is deleted afterwards."""
    yield f"{redis_available}/{REDIS_DB}"
    client = redis.Redis.from_url(f"{redis_available}/{REDIS_DB}", socket_timeout=2)
    try:
        keys = list(client.scan_iter(match="{" + prefix + "}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(params=["memory", "redis"])
def storage(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    return str(request.getfixturevalue("redis_url"))


def limits_config(
    storage: str, prefix: str, *, models: list[dict[str, Any]] | None = None, **limits: Any
) -> dict[str, Any]:
    return {
        "models": models or [priced_mock()],
        "limits": {"storage": storage, "key_prefix": prefix, **limits},
    }


@pytest.fixture
async def stack() -> AsyncIterator[Callable[..., tuple[RateLimitMiddleware, httpx2.AsyncClient]]]:
    """Factory: HeaderAuth > RateLimit > Router > ProviderApp, in process."""
    made: list[tuple[RateLimitMiddleware, httpx2.AsyncClient, ProviderApp]] = []

    def make(
        config: dict[str, Any], *, client: tuple[str, int] = ("127.0.0.1", 5000), **options: Any
    ) -> tuple[RateLimitMiddleware, httpx2.AsyncClient]:
        cfg = Config.from_dict(config)
        provider = ProviderApp(config=cfg)
        limiter = RateLimitMiddleware(RouterMiddleware(provider, config=cfg), config=cfg, **options)
        app = HeaderAuth(limiter, config=cfg)
        http = httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app, client=client), base_url="http://proxy.test"
        )
        made.append((limiter, http, provider))
        return limiter, http

    yield make
    for limiter, http, provider in made:
        await http.aclose()
        await limiter.shutdown()
        await provider.shutdown()  # its upstream client pools


class OwnRedis:
    """A redis-server this test owns on a free port: stop and start it at will."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_timeout=0.5)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    client.ping()
                    return
                except redis.RedisError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture
def own_redis(redis_available: str) -> Iterator[OwnRedis]:
    if shutil.which("redis-server") is None and not os.path.exists("/usr/bin/redis-server"):
        pytest.skip("no redis-server binary")
    server = OwnRedis()
    server.start()
    yield server
    server.stop()
