"""A fleet of three real `asgi-llm serve` replicas on one Redis topology: the config every
shared state is switched on in, and small helpers to speak to the replicas."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from asgi_llm.auth.keys import hash_key
from tests.harness import ProxyServer

REPLICAS = 3
ADMIN_KEY = "sk-fleet-admin-key-1"
USER_KEYS = {"team-a": "sk-fleet-user-key-a", "team-b": "sk-fleet-user-key-b"}
LIMIT = 50  # requests per minute over the fleet, model mock-1
USER = [{"role": "user", "content": "Say hello"}]  # mock: 2 prompt + 6 completion tokens


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def mock(name: str, **cost: float) -> dict[str, Any]:
    deployment: dict[str, Any] = {"id": f"{name}-d", "provider": "mock", "model": name}
    deployment["cost"] = {"input_per_mtok": 0.0, "output_per_mtok": 0.0, **cost}
    return {"name": name, "deployments": [deployment]}


def fleet_config(
    url: str, tag: str, *, flaky: tuple[str, str] | None = None, limit: int = LIMIT, semantic: bool = False
) -> dict[str, Any]:
    """Every Redis-backed feature on `url`: limits and budgets, the exact cache (with `semantic`
    its semantic tier too, on the packaged model), the key store, shared cooldowns (a model
    `flaky` over two upstreams, bad first), the reload channel."""
    models = [mock("mock-1"), mock("mock-2"), mock("priced", input_per_mtok=10_000, output_per_mtok=10_000)]
    if flaky is not None:
        models.append(
            {
                "name": "flaky",
                "deployments": [
                    {"id": f"flaky-{i}", "provider": "openai-compatible", "model": "m", "base_url": base}
                    for i, base in enumerate(flaky)
                ],
            }
        )
    return {
        "models": models,
        "auth": {
            "api_keys": [
                {"id": "ops", "key_sha256": hash_key(ADMIN_KEY), "roles": ["admin"]},
                *(
                    {"id": team, "key_sha256": hash_key(key), "roles": ["user"], "tenant": team}
                    for team, key in USER_KEYS.items()
                ),
            ],
            "roles": {
                "admin": {"models": ["*"], "endpoints": ["*"], "admin": True},
                "user": {"models": ["*"], "endpoints": ["*"]},
            },
            "key_store": {"url": url, "prefix": f"{tag}-keys", "cache_ttl_s": 1},
        },
        "limits": {
            "storage": url,
            "key_prefix": tag,
            "replicas": REPLICAS,
            "timeout_s": 2,  # generous: a loaded machine must not hand admissions to the fallback
            "rules": [
                {"per": "global", "model": "mock-1", "requests": f"{limit}/minute"},
                {"per": "global", "model": "mock-2", "requests": "10000/minute"},
            ],
            "budgets": [{"per": "tenant", "usd": 0.1, "period": "day"}],
        },
        "cache": {
            "backend": url,
            "key_prefix": f"{tag}:cache",
            "ttl_s": 600,
            "semantic": {"enabled": semantic, "threshold": 0.9},
        },
        "routing": {
            "redis_url": url,
            "redis_prefix": f"{tag}:routing",
            "retries": 1,
            "cooldown": {"failures": 1, "window_s": 60, "seconds": 60},
        },
        "reload": {"watch": False, "redis_url": url, "channel": f"{tag}:config"},
        "metrics": {"prometheus": {"path": "/metrics"}},
    }


def new_tag() -> str:
    return f"fleet-{uuid.uuid4().hex[:10]}"


def start_fleet(stack: ExitStack, config: dict[str, Any], workdir: Path) -> list[ProxyServer]:
    """Three replicas reading one config file (a reload reads the same edit), started at once."""
    path = workdir / "fleet.json"
    path.write_text(json.dumps(config))
    with ThreadPoolExecutor(REPLICAS) as pool:
        servers = list(pool.map(lambda _: ProxyServer(path, workdir), range(REPLICAS)))
    for server in servers:
        stack.enter_context(server)
    return servers
