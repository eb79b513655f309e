from __future__ import annotations

from typing import Any

import pytest

from asgi_llm.auth.keys import hash_key
from tests.conftest import mock_model
from tests.fakes.idp import AUDIENCE, CLIENT, ISSUER, FakeIdP

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
