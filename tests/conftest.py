"""Shared fixtures: configs, in-process clients, real servers."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx2
import pytest

from asgi_llm import Config, build_app

ERROR_KEYS = {"message", "type", "param", "code"}


def mock_model(name: str = "mock-1", **mock: Any) -> dict[str, Any]:
    return {"name": name, "deployments": [{"id": f"{name}-d", "provider": "mock", "model": name,
                                           **({"mock": mock} if mock else {})}]}


def upstream_model(name: str, *urls: str, **extra: Any) -> dict[str, Any]:
    """A model served by OpenAI-compatible fake upstreams (one deployment per URL)."""
    return {
        "name": name,
        "deployments": [
            {"id": f"{name}-{i}", "provider": "openai-compatible", "model": f"{name}-upstream",
             "base_url": url, "api_key": f"sk-upstream-secret-{i}", **extra}
            for i, url in enumerate(urls)
        ],
    }


def assert_error_shape(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == ERROR_KEYS, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


@pytest.fixture
def asgi_client() -> Callable[..., Any]:
    """Factory: an httpx2 client speaking to the full stack in process (no streaming)."""
    clients: list[httpx2.AsyncClient] = []

    def make(config: dict[str, Any] | Config | None = None, app: Any = None) -> httpx2.AsyncClient:
        if app is None:
            if isinstance(config, dict):
                config = Config.from_dict(config)
            app = build_app(config)
        client = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app),
                                    base_url="http://proxy.test")
        clients.append(client)
        return client

    yield make
    # ASGITransport has no lifespan: nothing to close but the clients themselves.


@pytest.fixture
async def mock_client(asgi_client: Callable[..., Any]) -> AsyncIterator[httpx2.AsyncClient]:
    async with asgi_client({"models": [mock_model()]}) as client:
        yield client


REDIS_HOST = os.environ.get("ASGI_LLM_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("ASGI_LLM_REDIS_PORT", "6379"))


@pytest.fixture(scope="session")
def redis_available() -> str:
    """`redis://host:port` of the real Redis the shared-state tests use.

    Locally they skip with a reason when none answers; with ASGI_LLM_REQUIRE_REDIS=1 (CI)
    they fail instead. Each component's tests use their own database number.
    """
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        if os.environ.get("ASGI_LLM_REQUIRE_REDIS") == "1":
            pytest.fail(f"Redis required (ASGI_LLM_REQUIRE_REDIS=1) but {REDIS_HOST}:{REDIS_PORT} "
                        f"does not answer: {exc}")
        pytest.skip(f"no Redis on {REDIS_HOST}:{REDIS_PORT}: {exc}")
    finally:
        client.close()
    return f"redis://{REDIS_HOST}:{REDIS_PORT}"
