"""Keys at run time (docs/teams.md): listing, rotation with a grace period, expiry, a key's
own budget, rates and models."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx2
import pytest

from asgi_llm.auth.keys import hash_key
from tests.auth.conftest import KEYS, TENANT_ADMIN, bearer, teams_config
from tests.conftest import assert_error_shape
from tests.harness import ProxyServer
from tests.ratelimit.conftest import USER
from tests.waiting import wait_until

ROOT = bearer(KEYS["root"])
CHAT = {"model": "mini", "messages": USER}
LISTED = {
    "id", "tenant", "roles", "created_at", "expires_at", "revoked", "rotated_at", "old_key_valid_until",
    "budget_usd", "budget_period", "rpm", "tpm", "models", "source",
}  # fmt: skip


def audit_reasons(path) -> list[str | None]:
    return [
        json.loads(line).get("reason") for line in path.read_text().splitlines() if '"outcome":"deny"' in line
    ]


def audited_server(store_prefix, tmp_path) -> tuple[ProxyServer, Path]:
    """A real `asgi-llm serve` of teams_config, and its audit log's path."""
    audit = tmp_path / "audit.jsonl"
    return ProxyServer(teams_config(*store_prefix, audit_log={"path": str(audit)}), tmp_path), audit


def test_a_rotated_key_works_through_its_grace_period_then_is_refused(store_prefix, tmp_path):
    server, audit = audited_server(store_prefix, tmp_path)
    with server:
        chat = server.base_url + "/chat/completions"
        minted = httpx2.post(
            server.root_url + "/admin/keys", headers=ROOT, json={"id": "svc", "roles": ["user"]}
        )
        old = minted.json()["key"]
        assert httpx2.post(chat, json=CHAT, headers=bearer(old)).status_code == 200
        rotated = httpx2.post(server.root_url + "/admin/keys/svc/rotate", headers=ROOT, json={"grace_s": 2})
        assert rotated.status_code == 201, rotated.text
        body = rotated.json()
        new = body["key"]
        assert new != old and body["id"] == "svc"
        assert time.time() < body["old_key_valid_until"] <= time.time() + 2
        assert httpx2.post(chat, json=CHAT, headers=bearer(new)).status_code == 200
        assert httpx2.post(chat, json=CHAT, headers=bearer(old)).status_code == 200  # in its grace period
        refused = wait_until(
            lambda: (r := httpx2.post(chat, json=CHAT, headers=bearer(old))).status_code == 401 and r,
            timeout=4,
            interval=0.1,
            message="the old key to be refused once its grace period is over",
        )
        assert time.time() >= body["old_key_valid_until"]
        error = assert_error_shape(refused, 401, "invalid_api_key")
        assert "rotation" in error["message"]
        assert httpx2.post(chat, json=CHAT, headers=bearer(new)).status_code == 200
        row = next(
            k
            for k in httpx2.get(server.root_url + "/admin/keys", headers=ROOT).json()["data"]
            if k["id"] == "svc"
        )
        assert row["rotated_at"] is not None and row["old_key_valid_until"] == body["old_key_valid_until"]
        # A revocation ends every secret of the key, the one in grace too.
        again = httpx2.post(server.root_url + "/admin/keys/svc/rotate", headers=ROOT, json={}).json()
        assert again["old_key_valid_until"] >= time.time() + 3500  # the default grace: an hour
        assert httpx2.post(chat, json=CHAT, headers=bearer(new)).status_code == 200
        assert httpx2.delete(server.root_url + "/admin/keys/svc", headers=ROOT).json() == {"revoked": "svc"}
        for key in (new, again["key"]):
            assert httpx2.post(chat, json=CHAT, headers=bearer(key)).status_code == 401
    assert "key_rotated" in audit_reasons(audit)
    assert old not in audit.read_text() and hash_key(old) not in audit.read_text()


def test_an_expired_key_is_refused(store_prefix, tmp_path):
    server, audit = audited_server(store_prefix, tmp_path)
    with server:
        chat = server.base_url + "/chat/completions"
        minted = httpx2.post(
            server.root_url + "/admin/keys",
            headers=ROOT,
            json={"id": "brief", "roles": ["user"], "ttl_s": 1.5},
        ).json()
        assert minted["expires_at"] <= time.time() + 1.5
        assert httpx2.post(chat, json=CHAT, headers=bearer(minted["key"])).status_code == 200
        refused = wait_until(
            lambda: (
                (r := httpx2.post(chat, json=CHAT, headers=bearer(minted["key"]))).status_code == 401 and r
            ),
            timeout=4,
            interval=0.1,
        )
        assert time.time() >= minted["expires_at"]
        assert "expired" in assert_error_shape(refused, 401, "invalid_api_key")["message"]
        at = "2030-01-01T00:00:00Z"
        later = httpx2.post(
            server.root_url + "/admin/keys", headers=ROOT, json={"id": "later", "roles": [], "expires_at": at}
        )
        assert later.json()["expires_at"] == 1893456000.0
        # Listed as it is: expired, not revoked.
        row = next(
            k
            for k in httpx2.get(server.root_url + "/admin/keys", headers=ROOT).json()["data"]
            if k["id"] == "brief"
        )
        assert row["expires_at"] == minted["expires_at"] and row["revoked"] is False
    assert "key_expired" in audit_reasons(audit)


async def test_the_listing_shows_what_a_key_may_do_and_never_the_key(asgi_client, store_prefix):
    client = asgi_client(teams_config(*store_prefix))
    minted = await client.post(
        "/admin/keys",
        headers=ROOT,
        json={"id": "k-1", "roles": ["user"], "tenant": "team-a", "budget_usd": 2.5, "budget_period": "day",
              "rpm": 10, "tpm": 5000, "models": ["mini"]},
    )  # fmt: skip
    assert minted.status_code == 201
    rows = (await client.get("/admin/keys", headers=ROOT)).json()["data"]
    for row in rows:
        assert set(row) == LISTED, row
    row = next(r for r in rows if r["id"] == "k-1")
    assert (row["budget_usd"], row["budget_period"], row["rpm"], row["tpm"], row["models"]) == (
        2.5,
        "day",
        10,
        5000,
        ["mini"],
    )
    assert (row["tenant"], row["roles"], row["revoked"], row["source"]) == (
        "team-a",
        ["user"],
        False,
        "store",
    )
    config_row = next(r for r in rows if r["id"] == "alice")
    assert config_row["source"] == "config" and config_row["created_at"] is None
    text = json.dumps(rows)
    assert minted.json()["key"] not in text and "sha256:" not in text
    await client.post("/admin/keys/revoke", headers=ROOT, json={"id": "k-1"})
    await client.post("/admin/keys/revoke", headers=ROOT, json={"id": "bob"})
    rows = {r["id"]: r for r in (await client.get("/admin/keys", headers=ROOT)).json()["data"]}
    assert rows["k-1"]["revoked"] and rows["bob"]["revoked"] and not rows["alice"]["revoked"]
    only = (await client.get("/admin/keys?tenant=team-b", headers=ROOT)).json()["data"]
    assert [r["id"] for r in only] == ["bob"]
    mine = (await client.get("/admin/keys?tenant=team-b", headers=bearer(TENANT_ADMIN))).json()["data"]
    assert {r["tenant"] for r in mine} == {"team-a"}  # a tenant admin's filter is its tenant


async def test_a_keys_own_rpm_and_models_hold(asgi_client, store_prefix):
    client = asgi_client(teams_config(*store_prefix))
    minted = await client.post(
        "/admin/keys", headers=ROOT, json={"id": "k-2", "roles": ["user"], "rpm": 2, "models": ["claude-*"]}
    )
    key = bearer(minted.json()["key"])
    refused = await client.post(
        "/v1/chat/completions", headers=key, json=CHAT
    )  # mini: its role's, not its own
    assert_error_shape(refused, 403, "model_not_allowed")
    body = {"model": "claude-haiku", "messages": USER}
    statuses = [
        (await client.post("/v1/chat/completions", headers=key, json=body)).status_code for _ in range(3)
    ]
    assert statuses == [200, 200, 429]


async def test_a_keys_own_budget_and_its_teams_hold_together(asgi_client, store_prefix):
    """Each cap holds on its own counter; a team's budget and a config per-tenant budget of the
    same period count one spend, and the lower cap holds."""
    config = teams_config(*store_prefix)
    config["limits"]["budgets"] = [{"per": "tenant", "usd": 0.3, "period": "month"}]
    client = asgi_client(config)
    await client.post("/admin/teams", headers=ROOT, json={"id": "team-a", "budget_usd": 0.2})
    minted = await client.post(
        "/admin/keys",
        headers=ROOT,
        json={"id": "k-3", "roles": ["user"], "tenant": "team-a", "budget_usd": 0.1},
    )
    key = bearer(minted.json()["key"])
    priced = {"model": "priced", "messages": USER}  # 0.08 USD
    assert [
        (await client.post("/v1/chat/completions", headers=key, json=priced)).status_code for _ in range(3)
    ] == [200, 200, 429]
    alice = bearer(KEYS["alice"])  # the same team, another key: the team's 0.2 (not the config's 0.3)
    assert [
        (await client.post("/v1/chat/completions", headers=alice, json=priced)).status_code for _ in range(2)
    ] == [200, 429]
    team = (await client.get("/admin/teams/team-a", headers=ROOT)).json()
    assert team["spent_usd"] == pytest.approx(0.24)  # the team's spend, every key of it


async def test_rotating_a_store_key_a_config_key_and_an_unknown_key(asgi_client, store_prefix):
    client = asgi_client(teams_config(*store_prefix))
    await client.post("/admin/keys", headers=ROOT, json={"id": "k-4", "roles": []})
    rotated = await client.post("/admin/keys/k-4/rotate", headers=ROOT, json={"grace_s": 0})
    assert rotated.status_code == 201 and rotated.json()["key"].startswith("sk-")  # scanned without it
    assert_error_shape(
        await client.post("/admin/keys/alice/rotate", headers=ROOT, json={}), 409, "config_key"
    )
    assert_error_shape(
        await client.post("/admin/keys/nope/rotate", headers=ROOT, json={}), 404, "key_not_found"
    )


async def test_concurrent_rotations_leave_no_secret_a_revocation_misses(asgi_client, store_prefix):
    client = asgi_client(teams_config(*store_prefix))
    first = (await client.post("/admin/keys", headers=ROOT, json={"id": "hot", "roles": ["user"]})).json()[
        "key"
    ]
    rotations = await asyncio.gather(
        *[client.post("/admin/keys/hot/rotate", headers=ROOT, json={}) for _ in range(6)]
    )
    assert [r.status_code for r in rotations] == [201] * 6
    secrets = [first, *(r.json()["key"] for r in rotations)]

    async def working() -> int:
        statuses = [
            (await client.post("/v1/chat/completions", json=CHAT, headers=bearer(key))).status_code
            for key in secrets
        ]
        return statuses.count(200)

    assert await working() == 5  # the current secret and the four newest in grace, whatever the order
    assert (await client.delete("/admin/keys/hot", headers=ROOT)).status_code == 200
    assert await working() == 0


async def test_a_key_minted_before_the_listing_existed_is_listed_and_rotated(asgi_client, store_prefix):
    import redis

    url, prefix = store_prefix
    legacy = "sk-legacy-0123456789"
    client = redis.Redis.from_url(f"{url}/3")
    record = json.dumps({"id": "legacy", "roles": ["user"], "tenant": "team-a"})  # the old layout
    client.hset(f"{prefix}:keys", hash_key(legacy), record)
    client.hset(f"{prefix}:key_ids", "legacy", hash_key(legacy))
    client.close()
    proxy = asgi_client(teams_config(*store_prefix))
    rows = {r["id"]: r for r in (await proxy.get("/admin/keys", headers=ROOT)).json()["data"]}
    assert rows["legacy"]["created_at"] is None and rows["legacy"]["tenant"] == "team-a"
    assert set(rows["legacy"]) == LISTED and rows["legacy"]["source"] == "store"
    assert (await proxy.post("/v1/chat/completions", json=CHAT, headers=bearer(legacy))).status_code == 200
    new = (await proxy.post("/admin/keys/legacy/rotate", headers=ROOT, json={"grace_s": 0})).json()["key"]
    assert (await proxy.post("/v1/chat/completions", json=CHAT, headers=bearer(new))).status_code == 200
    assert (await proxy.post("/v1/chat/completions", json=CHAT, headers=bearer(legacy))).status_code == 401
