"""Teams and runtime keys (docs/teams.md) on a real Redis Cluster, then on a real Sentinel
set: the key store's transactions (a rotation WATCHes the key's entries) and the team table
work there as on one Redis."""

from __future__ import annotations

import httpx2
import pytest

from tests.conftest import assert_error_shape
from tests.fleet.fleet import ADMIN_KEY, USER, bearer, fleet_config, new_tag
from tests.harness import ProxyServer

ADMIN = bearer(ADMIN_KEY)
BODY = {"model": "mock-2", "messages": USER}


@pytest.fixture(scope="module")
def replica(topology, tmp_path_factory):
    with ProxyServer(fleet_config(topology.url, new_tag()), tmp_path_factory.mktemp("teams")) as server:
        yield server


def chat(server: ProxyServer, key: str) -> httpx2.Response:
    return httpx2.post(server.base_url + "/chat/completions", json=BODY, headers=bearer(key), timeout=10)


def test_a_team_and_a_rotated_key_on_the_topology(replica):
    admin = replica.root_url + "/admin"
    created = httpx2.post(admin + "/teams", headers=ADMIN, json={"id": "t-x", "rpm": 2})
    assert created.status_code == 201, created.text
    minted = httpx2.post(
        admin + "/keys", headers=ADMIN, json={"id": "x-1", "roles": ["user"], "tenant": "t-x"}
    )
    assert minted.status_code == 201, minted.text
    old = minted.json()["key"]
    assert [chat(replica, old).status_code for _ in range(3)] == [200, 200, 429]  # the team's rpm

    rotated = httpx2.post(admin + "/keys/x-1/rotate", headers=ADMIN, json={"grace_s": 0})
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()["key"]
    assert_error_shape(chat(replica, old), 401, "invalid_api_key")
    assert_error_shape(chat(replica, new), 429, "rate_limit_exceeded")  # known, and still the team's
    patched = httpx2.patch(admin + "/teams/t-x", headers=ADMIN, json={"rpm": 100})
    assert patched.status_code == 200 and patched.json()["rpm"] == 100
    assert chat(replica, new).status_code == 200

    listed = {k["id"]: k for k in httpx2.get(admin + "/keys", headers=ADMIN).json()["data"]}
    assert listed["x-1"]["rotated_at"] is not None and listed["x-1"]["tenant"] == "t-x"
    assert_error_shape(httpx2.delete(admin + "/teams/t-x", headers=ADMIN), 409, "team_has_keys")
    assert httpx2.delete(admin + "/keys/x-1", headers=ADMIN).status_code == 200
    assert_error_shape(chat(replica, new), 401, "invalid_api_key")
    assert httpx2.delete(admin + "/teams/t-x", headers=ADMIN).json() == {"deleted": "t-x"}
