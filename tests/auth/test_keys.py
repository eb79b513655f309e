"""Keys shared by a fleet in Redis: mint, use, revoke across two real servers."""

from __future__ import annotations

import logging
import time
import uuid

import httpx2
import pytest

from asgi_llm.auth.keys import hash_key
from tests.auth.conftest import KEYS, auth_config, bearer
from tests.conftest import assert_error_shape
from tests.harness import ProxyServer, free_port
from tests.metrics.conftest import value
from tests.waiting import wait_until

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
        minted = httpx2.post(
            a.root_url + "/admin/keys",
            headers=bearer(KEYS["root"]),
            json={"id": "svc-1", "roles": ["user"], "tenant": "team-z"},
        )
        assert minted.status_code == 201, minted.text
        key = minted.json()["key"]
        assert (
            httpx2.post(b.base_url + "/chat/completions", json=CHAT, headers=bearer(key)).status_code == 200
        )

        revoked = httpx2.post(
            a.root_url + "/admin/keys/revoke", headers=bearer(KEYS["root"]), json={"id": "svc-1"}
        )
        assert revoked.status_code == 200
        started = time.monotonic()
        assert (
            httpx2.post(a.base_url + "/chat/completions", json=CHAT, headers=bearer(key)).status_code == 401
        )  # at once where it was revoked
        wait_until(
            lambda: (
                httpx2.post(b.base_url + "/chat/completions", json=CHAT, headers=bearer(key)).status_code
                == 401
            ),
            timeout=3,
            interval=0.05,
            message="replica B to refuse the revoked key",
        )
        latency = time.monotonic() - started
        assert latency <= 1.5  # cache_ttl_s (1 s) plus a request
        for server in (a, b):
            assert key not in server.log() and hash_key(key) not in server.log()


def test_config_keys_can_be_revoked_for_the_fleet_admins_too(store_config, tmp_path):
    with ProxyServer(store_config, tmp_path) as a:
        assert (
            httpx2.post(
                a.root_url + "/admin/keys/revoke", headers=bearer(KEYS["root"]), json={"id": "root"}
            ).status_code
            == 200
        )
        # a config key's revocation is read from the store: within cache_ttl_s (1 s) and a request
        wait_until(
            lambda: httpx2.get(a.root_url + "/admin/config", headers=bearer(KEYS["root"])).status_code == 401,
            timeout=1.5,
            interval=0.05,
        )


async def test_minting_beyond_ones_own_grants_is_refused(asgi_client, store_config):
    config = store_config
    config["auth"]["roles"]["ops"] = {"models": ["*"], "endpoints": ["*"], "admin": True}
    config["auth"]["roles"]["half-admin"] = {"models": ["mini"], "endpoints": ["chat"], "admin": True}
    config["auth"]["api_keys"].append(
        {"id": "half", "key_sha256": hash_key("sk-half-admin-1"), "roles": ["half-admin"]}
    )
    client = asgi_client(config)
    response = await client.post(
        "/admin/keys", headers=bearer("sk-half-admin-1"), json={"id": "escalated", "roles": ["ops"]}
    )
    assert_error_shape(response, 403, "grant_not_allowed")
    response = await client.post(
        "/admin/keys", headers=bearer("sk-half-admin-1"), json={"id": "fine", "roles": ["half-admin"]}
    )
    assert response.status_code == 201


def down_store(**key_store: object) -> dict[str, object]:
    """A key store on a port where nothing listens (connections refused at once)."""
    return {"url": f"redis://127.0.0.1:{free_port()}/0", "cache_ttl_s": 1, **key_store}


async def test_store_down_serves_config_keys_and_refuses_store_keys(asgi_client):
    """`on_unavailable: open` (the default): a config key authenticates from the config file;
    a key only the store could know gets 503, never 401, never an allow."""
    client = asgi_client(auth_config(key_store=down_store()))
    response = await client.post("/v1/chat/completions", json=CHAT, headers=bearer("sk-unknown-key-1"))
    assert_error_shape(response, 503, "dependency_unavailable")
    for _ in range(3):
        response = await client.post("/v1/chat/completions", json=CHAT, headers=bearer(KEYS["alice"]))
        assert response.status_code == 200, response.text
    assert (await client.get("/admin/config", headers=bearer(KEYS["root"]))).status_code == 200


async def test_store_down_with_on_unavailable_closed_refuses_config_keys_too(asgi_client):
    client = asgi_client(auth_config(key_store=down_store(on_unavailable="closed")))
    response = await client.post("/v1/chat/completions", json=CHAT, headers=bearer(KEYS["alice"]))
    assert_error_shape(response, 503, "dependency_unavailable")


async def test_a_store_outage_is_logged_once_and_readyz_and_metrics_name_it(asgi_client, caplog):
    config = {**auth_config(key_store=down_store()), "metrics": {"prometheus": {"path": "/metrics"}}}
    client = asgi_client(config)
    for key in [KEYS["alice"], "sk-unknown-key-1"] * 5:
        await client.post("/v1/chat/completions", json=CHAT, headers=bearer(key))
    warnings = [r for r in caplog.records if r.name == "asgi_llm.auth" and r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "key store" in warnings[0].getMessage()
    readyz = await client.get("/readyz")
    # Still ready (config keys are served), but the degraded dependency is named.
    assert readyz.status_code == 200 and readyz.json() == {"status": "ready", "degraded": ["key_store"]}
    metrics = (await client.get("/metrics")).text
    assert value(metrics, "asgi_llm_backend_degraded", backend="auth") == 1


async def test_store_down_leaves_jwt_callers_alone(asgi_client, idp):
    """A JWT is never a stored key: it is verified without asking the store at all."""
    config = auth_config(idp, key_store={"url": f"redis://127.0.0.1:{free_port()}/0", "cache_ttl_s": 1})
    client = asgi_client(config)
    response = await client.post("/v1/chat/completions", json=CHAT, headers=bearer(idp.token()))
    assert response.status_code == 200, response.text


async def test_a_tenant_admin_mints_and_revokes_within_its_tenant_only(asgi_client, store_config):
    config = store_config
    config["auth"]["roles"]["ops"] = {"models": ["*"], "endpoints": ["*"], "admin": True}
    config["auth"]["api_keys"].append(
        {
            "id": "team-a-admin",
            "key_sha256": hash_key("sk-team-a-admin"),
            "roles": ["ops"],
            "tenant": "team-a",
        }
    )
    client = asgi_client(config)
    tenant_admin, root = bearer("sk-team-a-admin"), bearer(KEYS["root"])
    response = await client.post(
        "/admin/keys",
        headers=tenant_admin,
        json={"id": "other-tenant", "roles": ["user"], "tenant": "team-b"},
    )
    assert_error_shape(response, 403, "grant_not_allowed")
    response = await client.post("/admin/keys", headers=tenant_admin, json={"id": "mine", "roles": ["user"]})
    assert response.status_code == 201 and response.json()["tenant"] == "team-a"  # its own, by default
    assert (
        await client.post(
            "/admin/keys", headers=root, json={"id": "theirs", "roles": ["user"], "tenant": "team-b"}
        )
    ).status_code == 201
    response = await client.post("/admin/keys/revoke", headers=tenant_admin, json={"id": "theirs"})
    assert_error_shape(response, 403, "grant_not_allowed")
    response = await client.post("/admin/keys/revoke", headers=tenant_admin, json={"id": "root"})
    assert_error_shape(response, 403, "grant_not_allowed")  # a config key of no tenant
    assert (
        await client.post("/admin/keys/revoke", headers=tenant_admin, json={"id": "mine"})
    ).status_code == 200


async def test_nobody_revokes_a_key_wider_than_their_own(asgi_client, store_config):
    config = store_config
    config["auth"]["roles"]["half-admin"] = {"models": ["mini"], "endpoints": ["chat"], "admin": True}
    config["auth"]["api_keys"].append(
        {"id": "half", "key_sha256": hash_key("sk-half-admin-1"), "roles": ["half-admin"]}
    )
    client = asgi_client(config)
    response = await client.post("/admin/keys/revoke", headers=bearer("sk-half-admin-1"), json={"id": "root"})
    assert_error_shape(response, 403, "grant_not_allowed")
    assert (await client.get("/admin/config", headers=bearer(KEYS["root"]))).status_code == 200


async def test_admin_actions_are_audited_without_an_audit_log_configured(
    asgi_client, store_config, no_secrets_in_logs
):
    client = asgi_client(store_config)
    response = await client.post(
        "/admin/keys", headers=bearer(KEYS["root"]), json={"id": "svc-9", "roles": []}
    )
    assert response.status_code == 201
    lines = [line for line in no_secrets_in_logs.lines if '"admin_action":"keys"' in line]
    assert len(lines) == 2 and all('"target":"key:svc-9"' in line for line in lines)
    assert '"outcome":"requested"' in lines[0] and '"outcome":"done"' in lines[1]
    assert response.json()["key"] not in "".join(no_secrets_in_logs.lines)


async def test_minting_with_the_store_down_is_a_503(asgi_client):
    config = auth_config(key_store={"url": f"redis://127.0.0.1:{free_port()}/0", "cache_ttl_s": 1})
    client = asgi_client(config)
    response = await client.post("/admin/keys", headers=bearer(KEYS["root"]), json={"id": "x", "roles": []})
    assert_error_shape(response, 503, "dependency_unavailable")
    response = await client.post("/admin/keys/revoke", headers=bearer(KEYS["root"]), json={"id": "x"})
    assert_error_shape(response, 503, "dependency_unavailable")


_PATTERNS = ["*", "gpt-*", "gpt-4o", "gpt-4o-mini", "claude-*", "mini", "embed-?"]
_ENDPOINTS = ["*", "chat", "completions", "embeddings", "models"]
_NAMES = ["gpt-4o", "gpt-4o-mini", "gpt-5", "claude-3", "mini", "embed-1", "other"]


def _role(data):
    from hypothesis import strategies as st

    return {
        "models": data.draw(st.lists(st.sampled_from(_PATTERNS), max_size=3, unique=True)),
        "endpoints": data.draw(st.lists(st.sampled_from(_ENDPOINTS), max_size=3, unique=True)),
        "admin": data.draw(st.booleans()),
    }


def test_a_grant_never_exceeds_what_the_granter_holds():
    """THREATS K7 as a property: whenever minting role B is allowed to a holder of role A,
    every model and endpoint B reaches, A reaches too, and B is admin only if A is."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from asgi_llm import Config
    from asgi_llm.admin.middleware import AdminMiddleware
    from asgi_llm.auth.roles import RoleBook
    from asgi_llm.config.catalog import ModelEntry
    from asgi_llm.errors import PermissionDenied

    @settings(max_examples=300, deadline=None)
    @given(st.data())
    def check(data):
        held, granted = _role(data), _role(data)
        data_ = auth_config()
        data_["auth"]["roles"].update(held=held, granted=granted)
        config = Config.from_dict(data_)
        holder = RoleBook(config.auth.roles).principal("p", tenant=None, roles=["held"], kind="api_key")
        try:
            AdminMiddleware._check_grants(config, holder, ["granted"])
        except PermissionDenied:
            return
        grantee = RoleBook(config.auth.roles).principal("g", tenant=None, roles=["granted"], kind="api_key")
        assert grantee.admin <= holder.admin
        for name in _NAMES:
            entry = ModelEntry(name=name, aliases=(), deployments=(), strategy="ordered")
            assert not grantee.may_use(entry) or holder.may_use(entry), (held, granted, name)
        for endpoint in _ENDPOINTS[1:]:
            assert not grantee.may_call(endpoint) or holder.may_call(endpoint), (held, granted, endpoint)

    check()
