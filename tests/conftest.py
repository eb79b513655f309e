"""Shared fixtures: configs, in-process clients, real servers."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx2
import pytest

from asgi_llm import Config, build_app

ERROR_KEYS = {"message", "type", "param", "code"}

# What key material looks like in any log line (THREATS H12): provider/client keys, digests,
# JWTs, Authorization values, and the literal secrets the tests configure.
SECRET_PATTERNS = re.compile(
    r"\bsk-(?!\*\*\*)[A-Za-z0-9_\-]{6,}|sha256:[0-9a-f]{16,}|eyJ[\w-]{10,}\.[\w-]{10,}\."
    r"|Bearer\s+[^\s*]|azure-secret-key|proxy-secret|s3cret"
    # Google: API keys, OAuth2 access tokens, a service account's private key.
    r"|AIza[0-9A-Za-z_\-]{20,}|ya29\.[\w\-.]{6,}|PRIVATE KEY-----"
    r"|bedrock-fake-secret|\b(?:AKIA|ASIA)[A-Z0-9]{16}\b|FwoGZXIvYXdzEFAKE"  # AWS keys, the fakes' secrets
)


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is not our concern here
            text = str(record.msg)
        if record.exc_info and record.exc_info[1] is not None:
            text += " " + repr(record.exc_info[1])
        self.lines.append(f"{record.name}: {text}")


def find_secrets(text: str) -> list[str]:
    return SECRET_PATTERNS.findall(text)


@pytest.fixture(autouse=True)
def no_secrets_in_logs() -> Any:
    """Every test runs with the asgi_llm loggers at DEBUG; no line may carry key material."""
    capture = _Capture()
    logger = logging.getLogger("asgi_llm")
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(capture)
    try:
        yield capture
    finally:
        root.removeHandler(capture)
        logger.setLevel(previous)
    leaked = [line for line in capture.lines if find_secrets(line)]
    assert not leaked, f"key material in logs: {leaked[:3]}"


async def scan_response(response: httpx2.Response) -> None:
    """Response headers and body carry no key material (THREATS I1, K6). The one answer that
    hands out a key on purpose, a minted or rotated key (POST /admin/keys, POST
    /admin/keys/{id}/rotate), is scanned without it."""
    await response.aread()
    body = response.text
    path = response.request.url.path
    if (
        path.endswith(("/admin/keys", "/rotate"))
        and path.startswith("/admin/keys")
        and response.status_code == 201
    ):
        body = json.dumps({k: v for k, v in response.json().items() if k != "key"})
    headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    leaked = find_secrets(headers) + find_secrets(body)
    assert not leaked, f"key material in a response to {response.request.url.path}: {leaked[:3]}"


def scan_metrics(app: Any) -> None:
    """The Prometheus exposition of a stack carries no key material (THREATS H12): the stack
    `build_app` made, or a MetricsMiddleware given as the app."""
    from asgi_llm import MetricsMiddleware
    from asgi_llm.app import LLMApp

    metrics = app.metrics if isinstance(app, LLMApp) else app
    if not isinstance(metrics, MetricsMiddleware):
        return
    text = metrics.prometheus.render()[0].decode()
    assert not find_secrets(text), f"key material in metrics: {find_secrets(text)[:3]}"


def mock_model(name: str = "mock-1", **mock: Any) -> dict[str, Any]:
    return {
        "name": name,
        "deployments": [
            {"id": f"{name}-d", "provider": "mock", "model": name, **({"mock": mock} if mock else {})}
        ],
    }


def upstream_model(name: str, *urls: str, **extra: Any) -> dict[str, Any]:
    """A model served by OpenAI-compatible fake upstreams (one deployment per URL)."""
    return {
        "name": name,
        "deployments": [
            {
                "id": f"{name}-{i}",
                "provider": "openai-compatible",
                "model": f"{name}-upstream",
                "base_url": url,
                "api_key": f"sk-upstream-secret-{i}",
                **extra,
            }
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


class _ErrorLines(logging.Handler):
    """The ERROR lines of the asgi_llm loggers while it is attached."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        cause = f" ({record.exc_info[1]!r})" if record.exc_info and record.exc_info[1] else ""
        self.lines.append(f"{record.name}: {record.getMessage()}{cause}")


NO_LIFESPAN = "the app does not run lifespan:"  # what asgi_llm.lifespan.lifespan raises then


async def run_lifespan_shutdown(app: Any) -> None:
    """In-process clients (httpx2.ASGITransport) never send lifespan events: drive them at
    teardown, as a server does at exit, so lazily opened pools and files get closed.

    Only an app that does not run lifespan at all (a bare terminal app) is let off: it opened
    nothing this could close. Any other failure fails the test, a layer's shutdown hook that
    raised included (LifespanHooks logs it at ERROR and goes on to the next layer).
    """
    from asgi_llm.lifespan import lifespan

    errors = _ErrorLines()
    logger = logging.getLogger("asgi_llm")
    logger.addHandler(errors)
    try:
        async with lifespan(app):
            pass
    except RuntimeError as exc:
        if not str(exc).startswith(NO_LIFESPAN):
            raise
    finally:
        logger.removeHandler(errors)
    assert not errors.lines, f"errors logged during the lifespan at teardown: {errors.lines}"


async def shut_down_all(apps: list[Any]) -> None:
    """`run_lifespan_shutdown` for every app, even after one fails; then raise its failures."""
    failures: list[Exception] = []
    for app in apps:
        try:
            await run_lifespan_shutdown(app)
        except Exception as exc:  # noqa: BLE001 - collected and raised below
            failures.append(exc)
    if len(failures) == 1:
        raise failures[0]
    if failures:
        raise ExceptionGroup("lifespan shutdown of several apps failed", failures)


@pytest.fixture
async def asgi_client() -> AsyncIterator[Callable[..., httpx2.AsyncClient]]:
    """Factory: an httpx2 client speaking to an app in process (no streaming, no sockets).

    Pass a config dict or Config (the full stack is built) or an `app`. At teardown every app
    gets a lifespan shutdown, so its clients and files are closed.
    """
    made: list[tuple[httpx2.AsyncClient, Any]] = []

    def make(
        config: dict[str, Any] | Config | None = None,
        app: Any = None,
        peer: tuple[str, int] = ("127.0.0.1", 123),
    ) -> httpx2.AsyncClient:
        if app is None:
            if isinstance(config, dict):
                config = Config.from_dict(config)
            app = build_app(config)
        client = httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app, client=peer),
            base_url="http://proxy.test",
            event_hooks={"response": [scan_response]},
        )
        made.append((client, app))
        return client

    yield make
    for client, app in made:
        await client.aclose()
        scan_metrics(app)
    await shut_down_all(list({id(app): app for _, app in made}.values()))  # one lifespan per app


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
            pytest.fail(
                f"Redis required (ASGI_LLM_REQUIRE_REDIS=1) but {REDIS_HOST}:{REDIS_PORT} "
                f"does not answer: {exc}"
            )
        pytest.skip(f"no Redis on {REDIS_HOST}:{REDIS_PORT}: {exc}")
    finally:
        client.close()
    return f"redis://{REDIS_HOST}:{REDIS_PORT}"
