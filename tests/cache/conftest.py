"""Cache test helpers: configs over a fake upstream, Redis database 2 with a prefix per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from asgi_llm.auth.keys import hash_key
from tests.conftest import upstream_model
from tests.fakes.upstream import Behavior, FakeUpstream

REDIS_DB = 2
KEYS = {
    "ann": "sk-ann-0123456789abcdef",
    "amy": "sk-amy-0123456789abcdef",
    "ben": "sk-ben-0123456789abcdef",
    "root": "sk-root-0123456789abcdef",
}
USER = [{"role": "user", "content": "What is the capital of France?"}]


def cache_config(upstream: FakeUpstream, *, auth: bool = False, **cache: Any) -> dict[str, Any]:
    """Model `m` (alias `m-alias`) and `other` on the fake upstream, with a `cache:` section."""
    config: dict[str, Any] = {
        "models": [
            {**upstream_model("m", upstream.base_url), "aliases": ["m-alias"]},
            upstream_model("other", upstream.base_url),
        ],
        "routing": {"retries": 0},
        "cache": {"backend": "memory://", **cache},
    }
    if auth:
        config["auth"] = {
            "api_keys": [
                {"id": "ann", "key_sha256": hash_key(KEYS["ann"]), "roles": ["user"], "tenant": "team-a"},
                {"id": "amy", "key_sha256": hash_key(KEYS["amy"]), "roles": ["user"], "tenant": "team-a"},
                {"id": "ben", "key_sha256": hash_key(KEYS["ben"]), "roles": ["user"], "tenant": "team-b"},
                {"id": "root", "key_sha256": hash_key(KEYS["root"]), "roles": ["admin"]},
            ],
            "roles": {
                "user": {"models": ["*"], "endpoints": ["*"]},
                "admin": {"models": ["*"], "endpoints": ["*"], "admin": True},
            },
        }
    return config


def bearer(who: str) -> dict[str, str]:
    return {"authorization": f"Bearer {KEYS[who]}"}


def chat(content: str = USER[0]["content"], **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": content}], **extra}


@pytest.fixture(scope="session")
def upstream_server() -> Iterator[FakeUpstream]:
    with FakeUpstream("cache") as server:
        yield server


@pytest.fixture
def upstream(upstream_server: FakeUpstream) -> FakeUpstream:
    upstream_server.reset()
    upstream_server.default = Behavior()
    return upstream_server


def inference_calls(upstream: FakeUpstream) -> int:
    return sum(1 for r in upstream.requests if r.method == "POST")


@pytest.fixture
def redis_url(redis_available: str, request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """(`redis://.../2`, a key prefix of this test's own); its keys are deleted afterwards."""
    import redis

    prefix = f"test:{request.node.name[:40]}:{os.urandom(4).hex()}".replace("[", "_").replace("]", "_")
    prefix = "".join(ch if ch.isalnum() or ch in "_.:-" else "_" for ch in prefix)
    url = f"{redis_available}/{REDIS_DB}"
    yield url, prefix
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
