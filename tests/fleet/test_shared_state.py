"""Three `asgi-llm serve` replicas on a real Redis Cluster, then on a real Sentinel set: every
shared state holds across the fleet exactly as on one Redis (docs/fleet.md)."""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import ExitStack

import httpx2
import pytest

from tests.conftest import assert_error_shape
from tests.fakes.upstream import Behavior, FakeUpstream
from tests.fleet.fleet import (
    ADMIN_KEY,
    LIMIT,
    REPLICAS,
    USER,
    USER_KEYS,
    bearer,
    fleet_config,
    new_tag,
    start_fleet,
)
from tests.waiting import wait_until

TEAM_A = bearer(USER_KEYS["team-a"])
COOLING = 'asgi_llm_deployment_cooling{deployment="flaky-0"} 1.0'


@pytest.fixture(scope="module")
def upstreams():
    with FakeUpstream("bad") as bad, FakeUpstream("good") as good:
        bad.default = Behavior(status=503)
        yield bad, good


@pytest.fixture(scope="module")
def fleet(topology, upstreams, tmp_path_factory):
    bad, good = upstreams
    config = fleet_config(topology.url, new_tag(), flaky=(bad.base_url, good.base_url), semantic=True)
    workdir = tmp_path_factory.mktemp("fleet")
    with ExitStack() as stack:
        yield start_fleet(stack, config, workdir), workdir / "fleet.json", config


def chat(server, body, headers=TEAM_A, **kwargs):
    return httpx2.post(
        server.base_url + "/chat/completions", json=body, headers=headers, timeout=10, **kwargs
    )


async def test_a_limit_of_50_admits_exactly_50_of_200_requests_across_replicas(fleet):
    servers = fleet[0]
    client_limits = httpx2.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx2.AsyncClient(limits=client_limits, timeout=30) as client:
        responses = await asyncio.gather(
            *[
                client.post(
                    servers[i % REPLICAS].base_url + "/chat/completions",
                    json={"model": "mock-1", "messages": USER},
                    headers={**TEAM_A, "cache-control": "no-store"},
                )
                for i in range(200)
            ]
        )
    statuses = [r.status_code for r in responses]
    odd = [r.text for r in responses if r.status_code not in (200, 429)]
    warnings = [line for server in servers for line in server.log().splitlines() if " WARNING " in line]
    assert statuses.count(200) == LIMIT, (statuses.count(200), odd, warnings)
    assert statuses.count(429) == 200 - LIMIT, (odd, warnings)
    for server in servers:  # never degraded: the count is the fleet's
        assert "rate-limit storage unavailable" not in server.log()


def test_a_team_budget_spent_on_two_replicas_holds_on_all(fleet):
    servers = fleet[0]
    body = {"model": "priced", "messages": USER}  # 8 tokens at 0.01 USD: 0.08 USD a request
    team_b = {**bearer(USER_KEYS["team-b"]), "cache-control": "no-store"}  # a hit costs nothing
    assert chat(servers[0], body, team_b).status_code == 200
    # charged when the answer has ended: the next one may still pass, the one after cannot
    wait_until(lambda: chat(servers[1], body, team_b).status_code == 429, timeout=5, interval=0.05)
    for server in servers:
        assert_error_shape(chat(server, body, team_b), 429, "insufficient_quota")


def test_an_exact_cache_entry_written_by_one_replica_is_a_hit_on_the_others(fleet):
    servers = fleet[0]
    body = {"model": "mock-2", "messages": [{"role": "user", "content": f"cache {time.time_ns()}"}]}
    first = chat(servers[0], body)
    assert first.status_code == 200 and first.headers["x-cache"] == "miss"
    for server in servers[1:]:
        again = chat(server, body)
        assert again.headers["x-cache"] == "hit" and again.headers["x-cache-kind"] == "exact"
        assert again.json()["choices"] == first.json()["choices"]


def question(text: str) -> dict[str, object]:
    return {"model": "mock-2", "messages": [{"role": "user", "content": text}]}


def test_a_semantic_entry_indexed_by_one_replica_is_a_hit_on_the_others(fleet):
    servers = fleet[0]
    asked = chat(servers[0], question("How do I bake sourdough bread at home?"))
    assert asked.status_code == 200 and asked.headers["x-cache"] == "miss"
    time.sleep(0.5)  # the vector reaches the others through the fleet stream (a blocking XREAD)
    # One wording per replica: a miss stores its own exact entry, which must not answer the next.
    for server, text in zip(
        servers[1:],
        ("How can I bake sourdough bread at home?", "How should I bake sourdough bread at home?"),
        strict=True,
    ):
        hit = chat(server, question(text))
        assert hit.headers["x-cache"] == "hit" and hit.headers["x-cache-kind"] == "semantic", hit.headers
        assert hit.json()["choices"] == asked.json()["choices"]


def test_a_revoked_key_is_refused_by_every_replica_within_cache_ttl(fleet):
    servers = fleet[0]
    body = {"model": "mock-2", "messages": USER}
    admin = bearer(ADMIN_KEY)
    key_id = f"svc-{time.time_ns()}"
    minted = httpx2.post(
        servers[0].root_url + "/admin/keys",
        headers=admin,
        json={"id": key_id, "roles": ["user"], "tenant": "t"},
    )
    assert minted.status_code == 201, minted.text
    key = bearer(minted.json()["key"])
    assert all(chat(server, body, key).status_code == 200 for server in servers)
    revoked = httpx2.post(servers[1].root_url + "/admin/keys/revoke", headers=admin, json={"id": key_id})
    assert revoked.status_code == 200, revoked.text
    started = time.monotonic()
    for server in servers:
        wait_until(lambda s=server: chat(s, body, key).status_code == 401, timeout=3, interval=0.05)
    assert time.monotonic() - started <= 1.5  # cache_ttl_s (1 s) and a request


def test_a_config_reload_on_one_replica_reaches_all(fleet):
    servers, path, config = fleet
    edited = json.loads(json.dumps(config))
    name = f"added-{time.time_ns()}"
    edited["models"].append({"name": name, "deployments": [{"id": name, "provider": "mock", "model": name}]})
    path.write_text(json.dumps(edited))
    try:
        reloaded = httpx2.post(servers[0].root_url + "/admin/config/reload", headers=bearer(ADMIN_KEY))
        assert reloaded.status_code == 200, reloaded.text

        def listed(server) -> bool:
            models = httpx2.get(server.base_url + "/models", headers=bearer(ADMIN_KEY)).json()["data"]
            return name in {m["id"] for m in models}

        for server in servers:
            wait_until(lambda s=server: listed(s), timeout=5, interval=0.05, message="the reload")
    finally:
        path.write_text(json.dumps(config))


def test_a_cooldown_decided_by_one_replica_is_kept_by_all(fleet, upstreams):
    servers = fleet[0]
    bad, _ = upstreams
    body = {"model": "flaky", "messages": USER}
    uncached = {**TEAM_A, "cache-control": "no-store"}
    first = chat(servers[0], body, uncached)  # bad fails once (failures: 1): cooled down, good answers
    assert first.status_code == 200 and first.headers["x-llm-deployment"] == "flaky-1", first.text
    tried = len(bad.requests)
    for server in servers[1:]:  # the notice, sent off the request path, reaches the others
        wait_until(
            lambda s=server: COOLING in httpx2.get(s.root_url + "/metrics").text, timeout=3, interval=0.05
        )
    for server in servers[1:]:  # which never tried the bad deployment themselves
        again = chat(server, body, uncached)
        assert again.headers["x-llm-deployment"] == "flaky-1" and again.headers["x-llm-attempts"] == "1"
    assert len(bad.requests) == tried
