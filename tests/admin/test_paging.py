"""The admin listings' paging (admin/paging.py): `limit` and `after=<id>`, answered
`{"data": [...], "next": <id>|null}`; `GET /admin/keys?revoked=true|false`."""

from __future__ import annotations

import pytest

from tests.auth.conftest import KEYS, TENANT_ADMIN, bearer, teams_config
from tests.conftest import assert_error_shape

ROOT = bearer(KEYS["root"])
CONFIG_KEYS = ["alice", "bob", "nobody", "root", "team-a-admin"]


async def every_page(client, path: str, limit: int) -> tuple[list[str], int]:
    """The ids of every page of a listing followed by `next`, and how many pages it took."""
    ids, after, pages = [], None, 0
    while True:
        params = {"limit": limit, **({"after": after} if after is not None else {})}
        body = (await client.get(path, headers=ROOT, params=params)).json()
        assert set(body) == {"data", "next"} and len(body["data"]) <= limit
        ids += [row["id"] for row in body["data"]]
        pages += 1
        after = body["next"]
        if after is None:
            return ids, pages


async def test_keys_and_teams_page_by_id(asgi_client, store_prefix):
    client = asgi_client(teams_config(*store_prefix))
    for n in range(5):
        await client.post("/admin/keys", headers=ROOT, json={"id": f"k-{n}", "roles": []})
        await client.post("/admin/teams", headers=ROOT, json={"id": f"t-{n}"})
    ids, pages = await every_page(client, "/admin/keys", 3)
    assert ids == sorted([f"k-{n}" for n in range(5)] + CONFIG_KEYS) and pages == 4
    everything = (await client.get("/admin/keys", headers=ROOT)).json()
    assert [r["id"] for r in everything["data"]] == ids and everything["next"] is None  # default 100
    assert await every_page(client, "/admin/teams", 2) == ([f"t-{n}" for n in range(5)], 3)
    exact = (await client.get("/admin/teams", headers=ROOT, params={"limit": 5})).json()
    assert len(exact["data"]) == 5 and exact["next"] is None  # no empty last page
    after = (await client.get("/admin/teams", headers=ROOT, params={"after": "t-2"})).json()
    assert [r["id"] for r in after["data"]] == ["t-3", "t-4"]
    gone = (await client.get("/admin/keys", headers=ROOT, params={"after": "k-25"})).json()  # no such id
    assert gone["data"][0]["id"] == "k-3"
    mine = (await client.get("/admin/teams", headers=bearer(TENANT_ADMIN), params={"limit": 1})).json()
    assert mine == {"data": [], "next": None}  # team-a was not created: a tenant admin sees only it


async def test_revoked_keys_can_be_left_out(asgi_client, store_prefix):
    client = asgi_client(teams_config(*store_prefix))
    for key_id in ("r-1", "r-2"):
        await client.post("/admin/keys", headers=ROOT, json={"id": key_id, "roles": []})
    await client.delete("/admin/keys/r-1", headers=ROOT)
    await client.post("/admin/keys/revoke", headers=ROOT, json={"id": "bob"})

    async def listed(query: str) -> list[str]:
        return [r["id"] for r in (await client.get("/admin/keys" + query, headers=ROOT)).json()["data"]]

    assert {"r-1", "r-2", "bob"} <= set(await listed(""))  # today's default: revoked ones listed too
    assert set(await listed("?revoked=true")) == {"r-1", "bob"}
    live = await listed("?revoked=false&limit=1000")
    assert "r-2" in live and "r-1" not in live and "bob" not in live


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/admin/keys?limit=0", "limit"),
        ("/admin/keys?limit=1001", "limit"),
        ("/admin/keys?limit=ten", "limit"),
        ("/admin/teams?limit=-1", "limit"),
        ("/admin/keys?after=", "after"),
        ("/admin/teams?after=" + "x" * 129, "after"),
        ("/admin/keys?revoked=no", "revoked"),
        ("/admin/keys?limit=1&limit=2", "limit"),
        ("/admin/keys?page=2", "page"),
        ("/admin/teams?tenant=team-a", "tenant"),
    ],
)
async def test_bad_paging_is_400_naming_the_parameter(asgi_client, store_prefix, path, param):
    client = asgi_client(teams_config(*store_prefix))
    error = assert_error_shape(await client.get(path, headers=ROOT), 400)
    assert (error["type"], error["param"]) == ("invalid_request_error", param)
