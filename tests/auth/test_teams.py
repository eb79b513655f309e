"""The team table of a replica (auth/teams.py) when the key store's Redis goes away."""

from __future__ import annotations

import time

import httpx2

from asgi_llm import AuthMiddleware, Config, Principal, ProviderApp, RouterMiddleware
from asgi_llm.auth.quotas import Settings
from asgi_llm.auth.teams import REFRESH_S, Team
from tests.auth.conftest import KEYS, bearer, teams_config
from tests.conftest import assert_error_shape
from tests.ratelimit.conftest import USER


async def test_the_last_team_table_stays_in_force_while_redis_is_down(asgi_client, own_redis):
    config = teams_config(own_redis.url.rsplit("/", 1)[0], "teams-down")
    config["limits"]["storage"] = "memory://"
    client = asgi_client(config)
    created = await client.post(
        "/admin/teams", headers=bearer(KEYS["root"]), json={"id": "team-a", "models": ["mini"]}
    )
    assert created.status_code == 201
    alice = bearer(KEYS["alice"])  # a config key of team-a: served from the config with `open`
    claude = {"model": "claude-haiku", "messages": USER}
    assert_error_shape(
        await client.post("/v1/chat/completions", headers=alice, json=claude), 403, "model_not_allowed"
    )
    own_redis.stop()
    time.sleep(REFRESH_S + 0.1)  # a refresh is due: it fails, in the background
    for _ in range(3):
        refused = await client.post("/v1/chat/completions", headers=alice, json=claude)
        assert_error_shape(refused, 403, "model_not_allowed")  # the team's allow-list still holds
    ok = await client.post("/v1/chat/completions", headers=alice, json={"model": "mini", "messages": USER})
    assert ok.status_code == 200, ok.text
    response = await client.get("/admin/teams", headers=bearer(KEYS["root"]))
    assert_error_shape(response, 503, "dependency_unavailable")  # an admin reads what is stored, or nothing


async def test_a_principal_from_a_users_hook_is_never_changed_by_its_team(store_prefix):
    """`authenticate` may hand out one Principal for many requests: the team's settings go on
    a copy, so they do not pile up on it."""
    config = Config.from_dict(teams_config(*store_prefix))
    shared = Principal("svc", tenant="team-a", roles=("user",), models=("*",), endpoints=("*",))

    async def hook(scope):
        return shared

    app = AuthMiddleware(
        RouterMiddleware(ProviderApp(config=config), config=config), config=config, authenticate=hook
    )
    store = app.key_store(config)
    await store.teams.create(Team("team-a", Settings(models=("mini",))))
    try:
        async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://t") as client:
            for _ in range(3):
                refused = await client.post(
                    "/v1/chat/completions", json={"model": "claude-haiku", "messages": USER}
                )
                assert_error_shape(refused, 403, "model_not_allowed")
            ok = await client.post("/v1/chat/completions", json={"model": "mini", "messages": USER})
            assert ok.status_code == 200
        assert shared.allow_lists == () and shared.quotas == ()
    finally:
        await app.key_stores.aclose()
