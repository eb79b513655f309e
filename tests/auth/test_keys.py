"""Keys shared by a fleet in Redis: mint, use, revoke across two real servers."""

from __future__ import annotations

import time
import uuid

import httpx2
import pytest

from asgi_llm.auth.keys import hash_key
from tests.auth.conftest import KEYS, auth_config, bearer
from tests.conftest import assert_error_shape
from tests.harness import ProxyServer, free_port

CHAT = {"model": "mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def store_config(redis_available):
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    config = auth_config(key_store={"url": f"{redis_available}/3", "prefix": prefix, "cache_ttl_s": 1})
    yield config
    import redis

    client = redis.Redis.from_url(f"{redis_available}/3")
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
    client.close()


def test_mint_use_and_revoke_across_two_replicas(store_config, tmp_path):
    with ProxyServer(store_config, tmp_path) as a, ProxyServer(store_config, tmp_path) as b:
        minted = httpx2.post(a.root_url + "/admin/keys", headers=bearer(KEYS["root"]),
                             json={"id": "svc-1", "roles": ["user"], "tenant": "team-z"})
        assert minted.status_code == 201, minted.text
        key = minted.json()["key"]
        assert httpx2.post(b.base_url + "/chat/completions", json=CHAT, headers=bearer(key)).status_code == 200

        revoked = httpx2.post(a.root_url + "/admin/keys/revoke", headers=bearer(KEYS["root"]),
                              json={"id": "svc-1"})
        assert revoked.status_code == 200
        started = time.monotonic()
        assert httpx2.post(a.base_url + "/chat/completions", json=CHAT,
                           headers=bearer(key)).status_code == 401  # at once where it was revoked
        while httpx2.post(b.base_url + "/chat/completions", json=CHAT,
                          headers=bearer(key)).status_code == 200:
            assert time.monotonic() - started < 3, "replica B kept accepting a revoked key"
            time.sleep(0.05)
        latency = time.monotonic() - started
        assert latency <= 1.5  # cache_ttl_s (1 s) plus a request
        for server in (a, b):
            assert key not in server.log() and hash_key(key) not in server.log()


def test_config_keys_can_be_revoked_for_the_fleet_admins_too(store_config, tmp_path):
    with ProxyServer(store_config, tmp_path) as a:
        assert httpx2.post(a.root_url + "/admin/keys/revoke", headers=bearer(KEYS["root"]),
                           json={"id": "root"}).status_code == 200
        time.sleep(1.1)
        assert httpx2.get(a.root_url + "/admin/config", headers=bearer(KEYS["root"])).status_code == 401


async def test_minting_beyond_ones_own_grants_is_refused(asgi_client, store_config):
    config = store_config
    config["auth"]["roles"]["ops"] = {"models": ["*"], "endpoints": ["*"], "admin": True}
    config["auth"]["roles"]["half-admin"] = {"models": ["mini"], "endpoints": ["chat"], "admin": True}
    config["auth"]["api_keys"].append({"id": "half", "key_sha256": hash_key("sk-half-admin-1"),
                                       "roles": ["half-admin"]})
    client = asgi_client(config)
    response = await client.post("/admin/keys", headers=bearer("sk-half-admin-1"),
                                 json={"id": "escalated", "roles": ["ops"]})
    assert_error_shape(response, 403, "grant_not_allowed")
    response = await client.post("/admin/keys", headers=bearer("sk-half-admin-1"),
                                 json={"id": "fine", "roles": ["half-admin"]})
    assert response.status_code == 201


async def test_store_down_is_503_never_allow(asgi_client):
    config = auth_config(key_store={"url": f"redis://127.0.0.1:{free_port()}/0", "cache_ttl_s": 1})
    client = asgi_client(config)
    response = await client.post("/v1/chat/completions", json=CHAT, headers=bearer("sk-unknown-key-1"))
    assert_error_shape(response, 503, "dependency_unavailable")
    response = await client.post("/v1/chat/completions", json=CHAT, headers=bearer(KEYS["alice"]))
    assert_error_shape(response, 503, "dependency_unavailable")


async def test_store_down_leaves_jwt_callers_alone(asgi_client, idp):
    """A JWT is never a stored key: it is verified without asking the store at all."""
    config = auth_config(idp, key_store={"url": f"redis://127.0.0.1:{free_port()}/0", "cache_ttl_s": 1})
    client = asgi_client(config)
    response = await client.post("/v1/chat/completions", json=CHAT, headers=bearer(idp.token()))
    assert response.status_code == 200, response.text
