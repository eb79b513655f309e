"""The ledger's query API through the whole stack in process: /admin/usage?group_by=,
/admin/requests, /admin/requests/{id}, CSV, tenant admins, bad parameters."""

from __future__ import annotations

import csv
import io

import pytest

from asgi_llm.auth.keys import hash_key
from tests.conftest import assert_error_shape, mock_model
from tests.waiting import await_until

ROOT_KEY, ADMIN_A_KEY, ALICE_KEY, BOB_KEY = (f"sk-{n}-0123456789" for n in ("root", "admina", "alice", "bob"))
ROOT = {"authorization": f"Bearer {ROOT_KEY}"}
ADMIN_A = {"authorization": f"Bearer {ADMIN_A_KEY}"}


def document(tmp_path, **ledger) -> dict:
    return {
        "models": [mock_model("m1"), mock_model("m2")],
        "auth": {
            "api_keys": [
                {"id": "root", "key_sha256": hash_key(ROOT_KEY), "roles": ["admin"]},
                {
                    "id": "admin-a",
                    "key_sha256": hash_key(ADMIN_A_KEY),
                    "roles": ["admin"],
                    "tenant": "team-a",
                },
                {"id": "alice", "key_sha256": hash_key(ALICE_KEY), "roles": ["user"], "tenant": "team-a"},
                {"id": "bob", "key_sha256": hash_key(BOB_KEY), "roles": ["user"], "tenant": "team-b"},
            ],
            "roles": {
                "admin": {"models": ["*"], "endpoints": ["*"], "admin": True},
                "user": {"models": ["*"], "endpoints": ["chat"]},
            },
        },
        "ledger": {"url": f"sqlite:///{tmp_path}/ledger.db", "flush_interval_s": 0.01, **ledger},
    }


async def chat(client, key: str, model: str = "m1", **extra) -> None:
    body = {"model": model, "messages": [{"role": "user", "content": "hello there"}], **extra}
    response = await client.post(
        "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}", **extra.pop("h", {})}
    )
    assert response.status_code == 200, response.text


@pytest.fixture
async def client(asgi_client, tmp_path):
    proxy = asgi_client(document(tmp_path))
    await chat(proxy, ALICE_KEY, "m1")
    await chat(proxy, ALICE_KEY, "m2")
    await chat(proxy, BOB_KEY, "m1")

    async def three() -> bool:
        response = await proxy.get("/admin/requests", headers=ROOT)
        return len(response.json()["data"]) == 3

    await await_until(three)
    return proxy


async def test_usage_groups_by_what_is_asked(client):
    response = await client.get("/admin/usage?group_by=team", headers=ROOT)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["group_by"] == "tenant" and body["from"] is None and body["to"] is None
    groups = {row["group"]: row for row in body["data"]}
    assert groups["team-a"]["requests"] == 2 and groups["team-b"]["requests"] == 1
    row = groups["team-a"]
    assert set(row) == {
        "group", "requests", "errors", "cache_hits", "input_tokens", "output_tokens", "cached_tokens",
        "cache_write_tokens", "reasoning_tokens", "cost_usd", "saved_usd", "latency_ms_avg",
    }  # fmt: skip
    assert row["input_tokens"] > 0 and row["output_tokens"] > 0 and row["errors"] == 0
    by_model = (await client.get("/admin/usage?group_by=model&key=alice", headers=ROOT)).json()["data"]
    assert sorted((r["group"], r["requests"]) for r in by_model) == [("m1", 1), ("m2", 1)]
    day = (
        await client.get("/admin/usage?group_by=day&from=2020-01-01&to=2100-01-01T00:00Z", headers=ROOT)
    ).json()
    assert sum(r["requests"] for r in day["data"]) == 3 and day["from"] == "2020-01-01T00:00:00.000Z"


async def test_the_request_log_pages_and_shows_one_request_with_its_attempts(client):
    first = (await client.get("/admin/requests?limit=2", headers=ROOT)).json()
    assert len(first["data"]) == 2 and first["next"]
    rest = (await client.get(f"/admin/requests?limit=2&before={first['next']}", headers=ROOT)).json()
    assert len(rest["data"]) == 1 and rest["next"] is None
    rows = first["data"] + rest["data"]
    assert [r["key_id"] for r in rows] == ["bob", "alice", "alice"]  # newest first
    row = rows[0]
    assert (row["tenant"], row["model"], row["deployment"], row["status"], row["attempts"]) == (
        "team-b", "m1", "m1-d", 200, 1
    )  # fmt: skip
    assert row["time"].endswith("Z") and row["endpoint"] == "chat" and row["client_gone"] is False
    one = await client.get(f"/admin/requests/{row['request_id']}", headers=ROOT)
    assert one.status_code == 200, one.text
    detail = one.json()
    assert detail["request_id"] == row["request_id"] and detail["prompt"] is None
    assert [(a["n"], a["deployment"], a["status"]) for a in detail["attempt_log"]] == [(1, "m1-d", 200)]
    assert_error_shape(await client.get("/admin/requests/nope", headers=ROOT), 404, "request_not_found")
    only_m2 = (await client.get("/admin/requests?model=m2&status=200", headers=ROOT)).json()["data"]
    assert [r["model"] for r in only_m2] == ["m2"]


async def test_a_tenant_admin_sees_its_tenant_only_whatever_it_asks(client):
    for query in ("", "?tenant=team-b", "?team=team-b", "?key=bob"):
        rows = (await client.get(f"/admin/requests{query}", headers=ADMIN_A)).json()["data"]
        assert {r["tenant"] for r in rows} <= {"team-a"}, query
    usage = (await client.get("/admin/usage?group_by=tenant&tenant=team-b", headers=ADMIN_A)).json()["data"]
    assert [(r["group"], r["requests"]) for r in usage] == [("team-a", 2)]  # its own, not team-b's
    usage = (await client.get("/admin/usage?group_by=key", headers=ADMIN_A)).json()["data"]
    assert {r["group"] for r in usage} == {"alice"}
    bobs = (await client.get("/admin/requests?key=bob", headers=ROOT)).json()["data"]
    one = await client.get(f"/admin/requests/{bobs[0]['request_id']}", headers=ADMIN_A)
    assert_error_shape(one, 404, "request_not_found")  # another tenant's: as if it did not exist


async def test_csv_exports_both(client):
    response = await client.get("/admin/requests?format=csv", headers=ROOT)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 3 and rows[0]["key_id"] == "bob" and rows[0]["status"] == "200"
    response = await client.get("/admin/usage?group_by=model&format=csv", headers=ROOT)
    assert response.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert sum(int(r["requests"]) for r in table) == 3 and set(table[0]) >= {"group", "cost_usd"}


async def test_a_csv_cell_a_spreadsheet_would_run_is_defused(asgi_client, tmp_path):
    proxy = asgi_client(document(tmp_path))
    body = {"model": "m1", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"authorization": f"Bearer {ALICE_KEY}", "x-llm-user": "=HYPERLINK(1)"}
    assert (await proxy.post("/v1/chat/completions", json=body, headers=headers)).status_code == 200

    async def written() -> str:
        return (await proxy.get("/admin/requests?format=csv", headers=ROOT)).text.count("\n") >= 2

    await await_until(written)
    rows = list(
        csv.DictReader(io.StringIO((await proxy.get("/admin/requests?format=csv", headers=ROOT)).text))
    )
    assert rows[0]["user"] == "'=HYPERLINK(1)"


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/admin/usage?group_by=week", "group_by"),
        ("/admin/usage?group_by=day&from=yesterday", "from"),
        ("/admin/usage?group_by=day&from=2027-01-02&to=2027-01-01", "from"),
        ("/admin/usage?group_by=day&colour=red", "colour"),
        ("/admin/requests?limit=0", "limit"),
        ("/admin/requests?limit=abc", "limit"),
        ("/admin/requests?before=garbage", "before"),
        ("/admin/requests?status=700", "status"),
        ("/admin/requests?format=xml", "format"),
        ("/admin/requests?key=a&key=b", "key"),
        ("/admin/requests?to=1e300", "to"),
    ],
)
async def test_a_bad_parameter_is_a_400_naming_it(client, path, param):
    error = assert_error_shape(await client.get(path, headers=ROOT), 400)
    assert error["type"] == "invalid_request_error" and error["param"] == param


async def test_without_a_ledger_requests_are_404_and_plain_usage_is_the_limiters(asgi_client, tmp_path):
    config = document(tmp_path)
    del config["ledger"]
    config["limits"] = {"rules": [{"per": "key", "requests": "100/minute"}]}
    proxy = asgi_client(config)
    assert_error_shape(await proxy.get("/admin/requests", headers=ROOT), 404, "ledger_not_configured")
    assert_error_shape(
        await proxy.get("/admin/usage?group_by=key", headers=ROOT), 404, "ledger_not_configured"
    )
    plain = await proxy.get("/admin/usage", headers=ROOT)
    assert plain.status_code == 200 and "data" not in plain.json()  # today's answer, unchanged


async def test_admin_calls_and_unidentified_callers_are_not_usage(client):
    for _ in range(3):
        await client.get("/admin/requests", headers=ROOT)
    body = {"model": "m1", "messages": [{"role": "user", "content": "hi"}]}
    for headers in ({}, {"authorization": "Bearer sk-not-a-key-0123"}):
        assert (await client.post("/v1/chat/completions", json=body, headers=headers)).status_code == 401
    forbidden = await client.post(
        "/v1/embeddings", json={"model": "m1", "input": "x"}, headers={"authorization": f"Bearer {ALICE_KEY}"}
    )
    assert forbidden.status_code == 403  # a known caller refused: that is recorded

    async def four() -> list[dict]:
        rows = (await client.get("/admin/requests", headers=ROOT)).json()["data"]
        return rows if len(rows) == 4 else []

    rows = await await_until(four)
    assert [(r["endpoint"], r["status"], r["key_id"]) for r in rows[:1]] == [("embeddings", 403, "alice")]
    assert {r["endpoint"] for r in rows[1:]} == {"chat"}
