from __future__ import annotations

from typing import Any

import pytest

from asgi_llm.auth.keys import hash_key
from tests.conftest import mock_model
from tests.fakes.idp import AUDIENCE, CLIENT, ISSUER, FakeIdP
from tests.ratelimit.conftest import own_redis  # noqa: F401 (a fixture: a Redis a test stops)

KEYS = {
    "alice": "sk-alice-0123456789",
    "bob": "sk-bob-0123456789",
    "root": "sk-root-0123456789",
    "nobody": "sk-nobody-0123456789",
}


def auth_config(idp: FakeIdP | None = None, **auth: Any) -> dict[str, Any]:
    section: dict[str, Any] = {
        "api_keys": [
            {"id": "alice", "key_sha256": hash_key(KEYS["alice"]), "roles": ["user"], "tenant": "team-a"},
            {"id": "bob", "key_sha256": hash_key(KEYS["bob"]), "roles": ["embedder"], "tenant": "team-b"},
            {"id": "root", "key_sha256": hash_key(KEYS["root"]), "roles": ["admin"]},
            {"id": "nobody", "key_sha256": hash_key(KEYS["nobody"]), "roles": []},
        ],
        "roles": {
            "user": {"models": ["mini", "claude-*"], "endpoints": ["chat", "completions", "models"]},
            "embedder": {"models": ["embed-*"], "endpoints": ["embeddings", "models"]},
            "admin": {"models": ["*"], "endpoints": ["*"], "admin": True},
        },
    }
    if idp is not None:
        section["jwt"] = {
            "jwks_url": idp.url + "/jwks.json",
            "issuer": ISSUER,
            "audience": AUDIENCE,
            "algorithms": ["RS256", "ES256"],
            "roles_claim": "roles",
            "tenant_claim": "org",
            "jwks_min_refresh_s": 30,
        }
        section["oauth2_introspection"] = {
            "url": idp.url + "/introspect",
            "client_id": CLIENT[0],
            "client_secret": CLIENT[1],
            "tenant_claim": "org",
        }
    section.update(auth)
    return {
        "models": [
            {**mock_model("gpt-4o-mini"), "aliases": ["mini"]},
            mock_model("claude-haiku"),
            mock_model("gpt-4o"),
            mock_model("embed-small"),
        ],
        "auth": section,
    }


@pytest.fixture(scope="session")
def idp_server():
    with FakeIdP() as server:
        yield server


@pytest.fixture
def idp(idp_server):
    """The session's IdP, reset: keys are minted once (RSA generation is slow)."""
    idp_server.mode = "up"
    idp_server.jwks_fetches = idp_server.introspections = 0
    idp_server.active_tokens.clear()
    return idp_server


@pytest.fixture(scope="session")
def attacker_key():
    from joserfc.jwk import RSAKey

    return RSAKey.generate_key(2048)


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


TENANT_ADMIN = "sk-team-a-admin-0123456789"


def teams_config(redis_url: str, prefix: str, **auth: Any) -> dict[str, Any]:
    """auth_config with a key store and a limits storage in Redis (db 3) under `prefix`, a
    priced model (8 tokens at 10,000 USD per million: 0.08 USD a request) and an admin of
    tenant team-a (`TENANT_ADMIN`) beside the tenant-less root."""
    from tests.ratelimit.conftest import priced_mock

    config = auth_config(key_store={"url": f"{redis_url}/3", "prefix": prefix, "cache_ttl_s": 1}, **auth)
    config["models"].append(priced_mock("priced", input_per_mtok=10_000, output_per_mtok=10_000))
    config["auth"]["roles"]["user"]["models"].append("priced")
    config["auth"]["roles"]["ops"] = {"models": ["*"], "endpoints": ["*"], "admin": True}
    config["auth"]["api_keys"].append(
        {"id": "team-a-admin", "key_sha256": hash_key(TENANT_ADMIN), "roles": ["ops"], "tenant": "team-a"}
    )
    config["limits"] = {"storage": f"{redis_url}/3", "key_prefix": prefix, "timeout_s": 5}
    return config


@pytest.fixture
def store_prefix(redis_available):
    """(Redis URL, a key prefix of this test's own); its keys are deleted afterwards (the key
    store's `<prefix>:*` and the limiter's `{<prefix>}:*`)."""
    import uuid

    import redis

    prefix = f"teams-{uuid.uuid4().hex[:12]}"
    yield redis_available, prefix
    client = redis.Redis.from_url(f"{redis_available}/3")
    for pattern in (f"{prefix}:*", "{" + prefix + "}*"):
        for key in client.scan_iter(pattern):
            client.delete(key)
    client.close()
