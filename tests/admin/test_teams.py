"""Teams at run time (docs/teams.md): created and changed through the admin API, kept in the
key store's Redis, enforced by every replica; tenant admins confined to their own team."""

from __future__ import annotations

import json
import time
from contextlib import ExitStack
from typing import Any

import httpx2
import pytest
import redis

from asgi_llm.request import match_endpoint
from tests.auth.conftest import KEYS, TENANT_ADMIN, bearer, teams_config
from tests.conftest import assert_error_shape, find_secrets
from tests.harness import ProxyServer
from tests.ratelimit.conftest import USER
from tests.waiting import wait_until

ROOT = bearer(KEYS["root"])
PRICED = {"model": "priced", "messages": USER}  # 0.08 USD a request


def spent_micros(url: str, prefix: str, tenant: str) -> int:
    """What the fleet's Redis holds as `tenant`'s spend, every budget period together."""
    client = redis.Redis.from_url(f"{url}/3")
    try:
        return sum(
            int(client.hget(key, tenant) or 0) for key in client.scan_iter("{" + prefix + "}:budget:tenant:*")
        )
    finally:
        client.close()


def test_a_team_budget_shared_by_three_keys_holds_across_three_replicas(store_prefix, tmp_path):
    url, prefix = store_prefix
    config = teams_config(url, prefix)
    with ExitStack() as stack:
        fleet = [stack.enter_context(ProxyServer(config, tmp_path)) for _ in range(3)]
        created = httpx2.post(
            fleet[0].root_url + "/admin/teams",
            headers=ROOT,
            json={"id": "team-x", "budget_usd": 0.2, "budget_period": "day", "metadata": {"cc": "42"}},
        )
        assert created.status_code == 201, created.text
        assert created.json()["budget_usd"] == 0.2 and created.json()["metadata"] == {"cc": "42"}
        keys = []
        for n in range(3):  # minted on three replicas
            minted = httpx2.post(
                fleet[n].root_url + "/admin/keys",
                headers=ROOT,
                json={"id": f"x-{n}", "roles": ["user"], "tenant": "team-x"},
            )
            assert minted.status_code == 201, minted.text
            keys.append(minted.json()["key"])
        # 0.2 USD at 0.08 a request: admitted while under the cap, so three, each key on its
        # own replica; the spend is charged once the answer has ended.
        for n in range(3):
            response = httpx2.post(
                fleet[n].base_url + "/chat/completions", json=PRICED, headers=bearer(keys[n])
            )
            assert response.status_code == 200, response.text
            want = 80_000 * (n + 1)
            wait_until(lambda want=want: spent_micros(url, prefix, "team-x") == want, message=f"{want} spent")
        for server in fleet:
            for key in keys:
                refused = httpx2.post(server.base_url + "/chat/completions", json=PRICED, headers=bearer(key))
                assert_error_shape(refused, 429, "insufficient_quota")
        assert spent_micros(url, prefix, "team-x") == 240_000  # nothing charged for a refusal
        team = httpx2.get(fleet[1].root_url + "/admin/teams/team-x", headers=ROOT).json()
        assert team["spent_usd"] == pytest.approx(0.24)
        # Another tenant is not affected.
        assert (
            httpx2.post(
                fleet[2].base_url + "/chat/completions", json=PRICED, headers=bearer(KEYS["alice"])
            ).status_code
            == 200
        )

        # A raised budget reaches every replica within the documented second (plus a request).
        raised = httpx2.patch(
            fleet[0].root_url + "/admin/teams/team-x", headers=ROOT, json={"budget_usd": 1.0}
        )
        assert raised.status_code == 200 and raised.json()["budget_usd"] == 1.0
        started = time.monotonic()
        wait_until(
            lambda: (
                httpx2.post(
                    fleet[2].base_url + "/chat/completions", json=PRICED, headers=bearer(keys[0])
                ).status_code
                == 200
            ),
            timeout=3,
            interval=0.05,
            message="replica C to admit under the raised budget",
        )
        assert time.monotonic() - started <= 2.0


def test_a_tenant_admin_cannot_read_or_change_another_tenants_keys_or_teams(store_prefix, tmp_path):
    url, prefix = store_prefix
    with ProxyServer(teams_config(url, prefix), tmp_path) as server:
        base, mine = server.root_url, bearer(TENANT_ADMIN)
        for team in ("team-a", "team-b"):
            assert (
                httpx2.post(base + "/admin/teams", headers=ROOT, json={"id": team, "rpm": 100}).status_code
                == 201
            )
        assert (
            httpx2.post(
                base + "/admin/keys", headers=ROOT, json={"id": "b-1", "roles": ["user"], "tenant": "team-b"}
            ).status_code
            == 201
        )
        assert (
            httpx2.post(base + "/admin/keys", headers=mine, json={"id": "a-1", "roles": ["user"]}).status_code
            == 201
        )

        listed = httpx2.get(base + "/admin/teams", headers=mine).json()["data"]
        assert [team["id"] for team in listed] == ["team-a"]
        keys = httpx2.get(base + "/admin/keys", headers=mine).json()["data"]
        assert {key["id"] for key in keys} == {
            "a-1",
            "team-a-admin",
            "alice",
        }  # store and config keys of team-a
        assert all(key["tenant"] == "team-a" for key in keys)
        every = {key["id"] for key in httpx2.get(base + "/admin/keys", headers=ROOT).json()["data"]}
        assert {"a-1", "b-1", "root", "bob"} <= every

        refusals = [
            ("GET", "/admin/teams/team-b", None),
            ("PATCH", "/admin/teams/team-b", {"metadata": {"x": 1}}),
            ("DELETE", "/admin/teams/team-b", None),
            ("GET", "/admin/teams/no-such-team", None),  # the same answer whether it exists or not
            ("POST", "/admin/teams", {"id": "team-c"}),
            ("PATCH", "/admin/teams/team-a", {"budget_usd": 1000}),  # its own budget: not its call
            ("PATCH", "/admin/teams/team-a", {"rpm": 100000}),
            ("DELETE", "/admin/teams/team-a", None),
            ("POST", "/admin/keys/b-1/rotate", {}),
            ("DELETE", "/admin/keys/b-1", None),
            ("POST", "/admin/keys/revoke", {"id": "b-1"}),
            ("POST", "/admin/keys", {"id": "b-2", "roles": ["user"], "tenant": "team-b"}),
        ]
        for method, path, body in refusals:
            response = httpx2.request(method, base + path, headers=mine, json=body)
            assert_error_shape(response, 403, "grant_not_allowed")
        response = httpx2.patch(base + "/admin/teams/team-a", headers=mine, json={"budget_usd": 1000})
        assert response.json()["error"]["param"] == "budget_usd"
        # What it may do: read its team, change its metadata, rotate its own keys.
        assert httpx2.get(base + "/admin/teams/team-a", headers=mine).json()["rpm"] == 100
        patched = httpx2.patch(
            base + "/admin/teams/team-a", headers=mine, json={"metadata": {"owner": "ana"}}
        )
        assert patched.status_code == 200 and patched.json()["metadata"] == {"owner": "ana"}
        assert patched.json()["rpm"] == 100
        assert (
            httpx2.post(base + "/admin/keys/a-1/rotate", headers=mine, json={"grace_s": 0}).status_code == 201
        )
        # Nothing of team-b changed.
        assert httpx2.get(base + "/admin/teams/team-b", headers=ROOT).json()["metadata"] == {}
        row = next(
            k for k in httpx2.get(base + "/admin/keys", headers=ROOT).json()["data"] if k["id"] == "b-1"
        )
        assert row["revoked"] is False and row["rotated_at"] is None


def test_every_change_is_audited(store_prefix, tmp_path):
    url, prefix = store_prefix
    audit = tmp_path / "audit.jsonl"
    config = teams_config(url, prefix, audit_log={"path": str(audit)})
    with ProxyServer(config, tmp_path) as server:
        base = server.root_url
        steps = [
            ("POST", "/admin/teams", {"id": "team-q", "budget_usd": 5, "models": ["mini"]}, 201),
            ("PATCH", "/admin/teams/team-q", {"rpm": 10, "metadata": {"a": 1}}, 200),
            (
                "POST",
                "/admin/keys",
                {"id": "q-1", "roles": ["user"], "tenant": "team-q", "ttl_s": 3600, "rpm": 5},
                201,
            ),
            ("POST", "/admin/keys/q-1/rotate", {"grace_s": 60}, 201),
            ("DELETE", "/admin/keys/q-1", None, 200),
            ("DELETE", "/admin/teams/team-q", None, 200),
            ("DELETE", "/admin/teams/team-q", None, 404),
        ]
        secrets = []
        for method, path, body, status in steps:
            response = httpx2.request(method, base + path, headers=ROOT, json=body)
            assert response.status_code == status, (path, response.text)
            if "key" in response.json():
                secrets.append(response.json()["key"])
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    admin = [
        (e["admin_action"], e.get("target"), e["outcome"], e.get("fields"))
        for e in lines
        if "admin_action" in e
    ]
    assert admin == [
        ("teams.create", "team:team-q", "requested", ["budget_usd", "id", "models"]),
        ("teams.create", "team:team-q", "done", ["budget_usd", "id", "models"]),
        ("teams.update", "team:team-q", "requested", ["metadata", "rpm"]),
        ("teams.update", "team:team-q", "done", ["metadata", "rpm"]),
        ("keys", "key:q-1", "requested", ["id", "roles", "rpm", "tenant", "ttl_s"]),
        ("keys", "key:q-1", "done", ["id", "roles", "rpm", "tenant", "ttl_s"]),
        ("keys.rotate", "key:q-1", "requested", ["grace_s"]),
        ("keys.rotate", "key:q-1", "done", ["grace_s"]),
        ("keys.delete", "key:q-1", "requested", None),
        ("keys.delete", "key:q-1", "done", None),
        ("teams.delete", "team:team-q", "requested", None),
        ("teams.delete", "team:team-q", "done", None),
        ("teams.delete", "team:team-q", "requested", None),
        ("teams.delete", "team:team-q", "refused", None),
    ]
    assert all(e["principal"] == "root" for e in lines if "admin_action" in e)
    text = audit.read_text()
    assert not find_secrets(text) and all(secret not in text for secret in secrets)


BAD_INPUT: list[tuple[str, str, Any, str]] = [
    ("POST", "/admin/teams", {"budget_usd": 1}, "id"),
    ("POST", "/admin/teams", {"id": "has space"}, "id"),
    ("POST", "/admin/teams", {"id": "x" * 65}, "id"),
    ("POST", "/admin/teams", {"id": "t", "budget_usd": -1}, "budget_usd"),
    ("POST", "/admin/teams", {"id": "t", "budget_usd": "5"}, "budget_usd"),
    ("POST", "/admin/teams", {"id": "t", "budget_period": "year"}, "budget_period"),
    ("POST", "/admin/teams", {"id": "t", "rpm": 0}, "rpm"),
    ("POST", "/admin/teams", {"id": "t", "tpm": 1.5}, "tpm"),
    ("POST", "/admin/teams", {"id": "t", "models": "mini"}, "models"),
    ("POST", "/admin/teams", {"id": "t", "metadata": ["x"]}, "metadata"),
    ("POST", "/admin/teams", {"id": "t", "metadata": {"x": "y" * 5000}}, "metadata"),
    ("POST", "/admin/teams", {"id": "t", "budget": 5}, "budget"),
    ("PATCH", "/admin/teams/team-v", {"id": "other"}, "id"),
    ("PATCH", "/admin/teams/team-v", {"rpm": -5}, "rpm"),
    ("POST", "/admin/keys", {"id": "", "roles": []}, "id"),
    ("POST", "/admin/keys", {"id": "k", "roles": ["no-such-role"]}, "roles"),
    ("POST", "/admin/keys", {"id": "k", "roles": [], "expires_at": "tomorrow"}, "expires_at"),
    ("POST", "/admin/keys", {"id": "k", "roles": [], "expires_at": 1000}, "expires_at"),
    ("POST", "/admin/keys", {"id": "k", "roles": [], "ttl_s": 0}, "ttl_s"),
    (
        "POST",
        "/admin/keys",
        {"id": "k", "roles": [], "ttl_s": 60, "expires_at": "2099-01-01T00:00:00Z"},
        "ttl_s",
    ),
    ("POST", "/admin/keys", {"id": "k", "roles": [], "budget_usd": 0}, "budget_usd"),
    ("POST", "/admin/keys", {"id": "k", "roles": [], "tpm": "many"}, "tpm"),
    ("POST", "/admin/keys", {"id": "k", "roles": [], "models": [1]}, "models"),
    ("POST", "/admin/keys", {"id": "k", "roles": [], "color": "red"}, "color"),
    ("POST", "/admin/keys/v-1/rotate", {"grace_s": -1}, "grace_s"),
    ("POST", "/admin/keys/v-1/rotate", {"grace_s": 10**9}, "grace_s"),
    ("POST", "/admin/keys/v-1/rotate", {"grace": 10}, "grace"),
]


def test_bad_input_is_400_naming_the_field(store_prefix, tmp_path):
    url, prefix = store_prefix
    with ProxyServer(teams_config(url, prefix), tmp_path) as server:
        base = server.root_url
        assert httpx2.post(base + "/admin/teams", headers=ROOT, json={"id": "team-v"}).status_code == 201
        assert (
            httpx2.post(base + "/admin/keys", headers=ROOT, json={"id": "v-1", "roles": []}).status_code
            == 201
        )
        for method, path, body, param in BAD_INPUT:
            response = httpx2.request(method, base + path, headers=ROOT, json=body)
            error = assert_error_shape(response, 400)
            assert error["type"] == "invalid_request_error" and error["param"] == param, (body, error)
        # Nothing was made or changed by a refused request.
        teams = httpx2.get(base + "/admin/teams", headers=ROOT).json()["data"]
        assert [(t["id"], t["rpm"]) for t in teams] == [("team-v", None)]


async def test_team_crud_and_unknown_ids(asgi_client, store_prefix):
    client = asgi_client(teams_config(*store_prefix))
    response = await client.post(
        "/admin/teams", headers=ROOT, json={"id": "team-c", "tpm": 1000, "models": ["mini", "mini"]}
    )
    assert response.status_code == 201
    team = response.json()
    assert team["models"] == ["mini"] and team["budget_usd"] is None and team["budget_period"] == "month"
    assert team["created_at"] == team["updated_at"] > time.time() - 60
    assert_error_shape(
        await client.post("/admin/teams", headers=ROOT, json={"id": "team-c"}), 409, "team_exists"
    )
    patched = (await client.patch("/admin/teams/team-c", headers=ROOT, json={"tpm": None, "rpm": 7})).json()
    assert (patched["tpm"], patched["rpm"], patched["models"]) == (None, 7, ["mini"])
    assert (await client.get("/admin/teams/team-c", headers=ROOT)).json() == patched
    assert (await client.get("/admin/teams", headers=ROOT)).json() == {"data": [patched], "next": None}
    assert_error_shape(await client.get("/admin/teams/nope", headers=ROOT), 404, "team_not_found")
    assert_error_shape(await client.patch("/admin/teams/nope", headers=ROOT, json={}), 404, "team_not_found")
    response = await client.put("/admin/teams/team-c", headers=ROOT, json={})
    assert_error_shape(response, 405, "method_not_allowed")
    assert (await client.delete("/admin/teams/team-c", headers=ROOT)).json() == {"deleted": "team-c"}
    assert (await client.get("/admin/teams", headers=ROOT)).json() == {"data": [], "next": None}


async def test_a_team_with_live_keys_is_not_deleted(asgi_client, store_prefix):
    client = asgi_client(teams_config(*store_prefix))
    for team in ("team-a", "team-d"):
        assert (await client.post("/admin/teams", headers=ROOT, json={"id": team})).status_code == 201
    await client.post("/admin/keys", headers=ROOT, json={"id": "d-1", "roles": ["user"], "tenant": "team-d"})
    error = assert_error_shape(await client.delete("/admin/teams/team-d", headers=ROOT), 409, "team_has_keys")
    assert "d-1" in error["message"]
    # team-a has config keys (alice, team-a-admin): refused too, until they are revoked.
    assert_error_shape(await client.delete("/admin/teams/team-a", headers=ROOT), 409, "team_has_keys")
    assert (await client.delete("/admin/keys/d-1", headers=ROOT)).status_code == 200
    assert (await client.delete("/admin/teams/team-d", headers=ROOT)).status_code == 200


async def test_a_teams_models_restrict_every_key_of_the_team(asgi_client, store_prefix):
    client = asgi_client(teams_config(*store_prefix))
    assert (
        await client.post("/admin/teams", headers=ROOT, json={"id": "team-a", "models": ["mini"]})
    ).status_code == 201
    alice = bearer(KEYS["alice"])  # a config key of team-a; its role allows mini and claude-*
    ok = await client.post("/v1/chat/completions", headers=alice, json={"model": "mini", "messages": USER})
    assert ok.status_code == 200
    refused = await client.post(
        "/v1/chat/completions", headers=alice, json={"model": "claude-haiku", "messages": USER}
    )
    assert_error_shape(refused, 403, "model_not_allowed")
    models = (await client.get("/v1/models", headers=alice)).json()["data"]
    assert [m["id"] for m in models] == ["gpt-4o-mini"]
    assert (await client.patch("/admin/teams/team-a", headers=ROOT, json={"models": None})).status_code == 200
    again = await client.post(
        "/v1/chat/completions", headers=alice, json={"model": "claude-haiku", "messages": USER}
    )
    assert again.status_code == 200  # the replica that made the change, at once


async def test_a_teams_rpm_counts_every_key_of_the_team(asgi_client, store_prefix):
    client = asgi_client(teams_config(*store_prefix))
    assert (
        await client.post("/admin/teams", headers=ROOT, json={"id": "team-r", "rpm": 3})
    ).status_code == 201
    keys = []
    for n in range(2):
        minted = await client.post(
            "/admin/keys", headers=ROOT, json={"id": f"r-{n}", "roles": ["user"], "tenant": "team-r"}
        )
        keys.append(minted.json()["key"])
    statuses = [
        (
            await client.post(
                "/v1/chat/completions", headers=bearer(keys[n % 2]), json={"model": "mini", "messages": USER}
            )
        ).status_code
        for n in range(5)
    ]
    assert statuses == [200, 200, 200, 429, 429]


async def test_budgets_and_rates_need_a_limits_section(asgi_client, store_prefix):
    config = teams_config(*store_prefix)
    del config["limits"]
    client = asgi_client(config)
    response = await client.post("/admin/teams", headers=ROOT, json={"id": "t", "budget_usd": 5})
    assert assert_error_shape(response, 400, "limits_not_configured")["param"] == "budget_usd"
    assert (
        await client.post("/admin/teams", headers=ROOT, json={"id": "t", "models": ["mini"]})
    ).status_code == 201


@pytest.mark.parametrize(
    ("path", "method", "name", "target"),
    [
        ("/admin/teams", "GET", "admin.teams.list", None),
        ("/admin/teams", "POST", "admin.teams.create", None),
        ("/admin/teams/t-1", "GET", "admin.teams.get", "t-1"),
        ("/admin/teams/t-1", "PATCH", "admin.teams.update", "t-1"),
        ("/admin/teams/t-1", "DELETE", "admin.teams.delete", "t-1"),
        ("/admin/keys", "GET", "admin.keys.list", None),
        ("/admin/keys", "POST", "admin.keys", None),
        ("/admin/keys/revoke", "POST", "admin.keys.revoke", None),
        ("/admin/keys/k-1", "DELETE", "admin.keys.delete", "k-1"),
        ("/admin/keys/k-1/rotate", "POST", "admin.keys.rotate", "k-1"),
        ("/admin/keys/ns/k-1/rotate", "POST", "admin.keys.rotate", "ns/k-1"),
    ],
)
def test_admin_routes_with_methods_and_ids(path, method, name, target):
    route = match_endpoint({"type": "http", "path": path, "method": method, "headers": []})
    assert route is not None and (route.name, route.method, route.target) == (name, method, target)


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/admin/teams", "GET"),
        ("/admin/teams", "POST"),
        ("/admin/teams/t-1", "GET"),
        ("/admin/teams/t-1", "PATCH"),
        ("/admin/teams/t-1", "DELETE"),
        ("/admin/keys", "GET"),
        ("/admin/keys/k-1", "DELETE"),
        ("/admin/keys/k-1/rotate", "POST"),
    ],
)
async def test_every_new_admin_route_needs_an_admin(asgi_client, store_prefix, path, method):
    client = asgi_client(teams_config(*store_prefix))
    response = await client.request(method, path, json={} if method in ("POST", "PATCH") else None)
    assert_error_shape(response, 401, "invalid_api_key")
    response = await client.request(method, path, headers=bearer(KEYS["alice"]))
    assert_error_shape(response, 403, "endpoint_not_allowed")


async def test_a_teams_tpm_counts_the_tokens_of_every_key(asgi_client, store_prefix):
    client = asgi_client(teams_config(*store_prefix))
    assert (
        await client.post("/admin/teams", headers=ROOT, json={"id": "team-a", "tpm": 20})
    ).status_code == 201
    body = {"model": "mini", "messages": USER, "max_tokens": 8}  # 2 prompt + 6 completion tokens
    statuses = [
        (await client.post("/v1/chat/completions", headers=bearer(KEYS["alice"]), json=body))
        for _ in range(3)
    ]
    assert [r.status_code for r in statuses] == [200, 200, 429]  # 16 of 20 used: no room to reserve 11 more
    assert statuses[0].headers["x-ratelimit-limit-tokens"] == "20"
    assert_error_shape(statuses[2], 429, "rate_limit_exceeded")
