"""`PATCH /admin/keys/{id}` (docs/teams.md): a key's settings changed without a new secret,
checked as minting is, confined to a tenant admin's own tenant, audited, never showing the
key or its digest."""

from __future__ import annotations

import json
import time

import httpx2
import pytest

from asgi_llm.request import match_endpoint
from tests.auth.conftest import KEYS, TENANT_ADMIN, bearer, teams_config
from tests.conftest import assert_error_shape
from tests.harness import ProxyServer
from tests.ratelimit.conftest import USER

ROOT = bearer(KEYS["root"])
CHAT = {"model": "mini", "messages": USER}


async def test_patch_sets_and_clears_settings_and_keeps_the_secret(asgi_client, store_prefix):
    client = asgi_client(teams_config(*store_prefix))
    minted = await client.post(
        "/admin/keys",
        headers=ROOT,
        json={"id": "p-1", "roles": ["user"], "tenant": "team-a", "rpm": 1, "models": ["claude-*"]},
    )
    secret = minted.json()["key"]
    key = bearer(secret)
    assert_error_shape(
        await client.post("/v1/chat/completions", headers=key, json=CHAT), 403, "model_not_allowed"
    )
    patched = await client.patch(
        "/admin/keys/p-1", headers=ROOT, json={"models": None, "rpm": 2, "budget_usd": 3, "ttl_s": 3600}
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["models"], body["rpm"], body["budget_usd"], body["budget_period"]) == (None, 2, 3.0, "month")
    assert body["expires_at"] > time.time() + 3500 and body["tenant"] == "team-a"
    assert "key" not in body and secret not in patched.text and "sha256" not in patched.text
    # The same secret, now under the new settings (mini allowed, two a minute).
    statuses = [
        (await client.post("/v1/chat/completions", headers=key, json=CHAT)).status_code for _ in range(3)
    ]
    assert statuses == [200, 200, 429]
    listed = {r["id"]: r for r in (await client.get("/admin/keys", headers=ROOT)).json()["data"]}
    assert (listed["p-1"]["rpm"], listed["p-1"]["budget_usd"], listed["p-1"]["models"]) == (2, 3.0, None)
    assert listed["p-1"]["created_at"] is not None  # its history is kept
    cleared = await client.patch(
        "/admin/keys/p-1", headers=ROOT, json={"expires_at": None, "budget_usd": None}
    )
    assert (cleared.json()["expires_at"], cleared.json()["budget_usd"], cleared.json()["rpm"]) == (
        None,
        None,
        2,
    )


async def test_patch_refusals_in_the_error_shape(asgi_client, store_prefix):
    client = asgi_client(teams_config(*store_prefix))
    await client.post("/admin/keys", headers=ROOT, json={"id": "p-2", "roles": ["user"], "tenant": "team-b"})
    await client.post("/admin/keys", headers=ROOT, json={"id": "p-3", "roles": ["ops"], "tenant": "team-a"})
    cases = [
        ("p-2", ROOT, {"rpm": 0}, 400, None, "rpm"),
        ("p-2", ROOT, {"budget_period": "year"}, 400, None, "budget_period"),
        ("p-2", ROOT, {"ttl_s": 10, "expires_at": "2999-01-01"}, 400, None, "ttl_s"),
        ("p-2", ROOT, {"roles": ["admin"]}, 400, "unknown_parameter", "roles"),
        ("p-2", ROOT, {"key": "sk-x"}, 400, "unknown_parameter", "key"),
        ("alice", ROOT, {"rpm": 5}, 409, "config_key", None),
        ("nope", ROOT, {"rpm": 5}, 404, "key_not_found", None),
        ("p-2", bearer(TENANT_ADMIN), {"rpm": 5}, 403, "grant_not_allowed", None),  # another tenant
    ]
    for key_id, who, body, status, code, param in cases:
        response = await client.patch(f"/admin/keys/{key_id}", headers=who, json=body)
        error = assert_error_shape(response, status, code)
        assert error["type"] == ("invalid_request_error" if status in (400, 404, 409) else error["type"])
        if param is not None:
            assert error["param"] == param, response.text
    # A tenant admin changes its own tenant's keys, not the key it is using.
    assert (
        await client.patch("/admin/keys/p-3", headers=bearer(TENANT_ADMIN), json={"rpm": 7})
    ).status_code == 200
    rotated = await client.post("/admin/keys/p-3/rotate", headers=ROOT, json={"grace_s": 0})
    own = bearer(rotated.json()["key"])
    assert_error_shape(
        await client.patch("/admin/keys/p-3", headers=own, json={"rpm": 9}), 403, "grant_not_allowed"
    )


async def test_budgets_set_by_patch_need_a_limits_section(asgi_client, store_prefix):
    config = teams_config(*store_prefix)
    del config["limits"]
    client = asgi_client(config)
    await client.post("/admin/keys", headers=ROOT, json={"id": "p-4", "roles": []})
    response = await client.patch("/admin/keys/p-4", headers=ROOT, json={"tpm": 100})
    assert assert_error_shape(response, 400, "limits_not_configured")["param"] == "tpm"
    assert (await client.patch("/admin/keys/p-4", headers=ROOT, json={"models": ["mini"]})).status_code == 200


def test_patch_through_serve_is_audited_and_reaches_the_key(store_prefix, tmp_path):
    audit = tmp_path / "audit.jsonl"
    with ProxyServer(teams_config(*store_prefix, audit_log={"path": str(audit)}), tmp_path) as server:
        minted = httpx2.post(
            server.root_url + "/admin/keys", headers=ROOT, json={"id": "p-5", "roles": ["user"], "rpm": 1}
        )
        secret = minted.json()["key"]
        patched = httpx2.patch(server.root_url + "/admin/keys/p-5", headers=ROOT, json={"rpm": 3})
        assert patched.status_code == 200 and patched.json()["rpm"] == 3
        assert secret not in patched.text
        statuses = [
            httpx2.post(server.base_url + "/chat/completions", headers=bearer(secret), json=CHAT).status_code
            for _ in range(4)
        ]
        assert statuses == [200, 200, 200, 429]
        refused = httpx2.patch(server.root_url + "/admin/keys/alice", headers=ROOT, json={"rpm": 3})
        assert_error_shape(refused, 409, "config_key")
    events = [json.loads(line) for line in audit.read_text().splitlines()]
    changes = [
        (e["admin_action"], e.get("target"), e["outcome"], e.get("fields"))
        for e in events
        if e.get("admin_action") == "keys.update"
    ]
    assert changes == [
        ("keys.update", "key:p-5", "requested", ["rpm"]),
        ("keys.update", "key:p-5", "done", ["rpm"]),
        ("keys.update", "key:alice", "requested", ["rpm"]),
        ("keys.update", "key:alice", "refused", ["rpm"]),
    ]
    assert secret not in audit.read_text()


@pytest.mark.parametrize(("path", "target"), [("/admin/keys/k-1", "k-1"), ("/admin/keys/ns/k-1", "ns/k-1")])
async def test_the_patch_route_needs_an_admin(asgi_client, store_prefix, path, target):
    route = match_endpoint({"type": "http", "path": path, "method": "PATCH", "headers": []})
    assert route is not None and (route.name, route.method, route.target) == (
        "admin.keys.update",
        "PATCH",
        target,
    )
    client = asgi_client(teams_config(*store_prefix))
    assert_error_shape(await client.patch(path, json={}), 401, "invalid_api_key")
    assert_error_shape(
        await client.patch(path, headers=bearer(KEYS["alice"]), json={}), 403, "endpoint_not_allowed"
    )


async def test_a_secret_in_its_grace_period_takes_the_new_settings(asgi_client, store_prefix):
    client = asgi_client(teams_config(*store_prefix))
    minted = await client.post(
        "/admin/keys", headers=ROOT, json={"id": "p-6", "roles": ["user"], "models": ["claude-*"]}
    )
    old = bearer(minted.json()["key"])
    new = bearer(
        (await client.post("/admin/keys/p-6/rotate", headers=ROOT, json={"grace_s": 60})).json()["key"]
    )
    assert (await client.patch("/admin/keys/p-6", headers=ROOT, json={"models": ["mini"]})).status_code == 200
    for secret in (old, new):
        assert (await client.post("/v1/chat/completions", headers=secret, json=CHAT)).status_code == 200
        body = {"model": "claude-haiku", "messages": USER}
        assert_error_shape(
            await client.post("/v1/chat/completions", headers=secret, json=body), 403, "model_not_allowed"
        )
    listed = {r["id"]: r for r in (await client.get("/admin/keys", headers=ROOT)).json()["data"]}
    assert listed["p-6"]["rotated_at"] is not None and listed["p-6"]["old_key_valid_until"] is not None
