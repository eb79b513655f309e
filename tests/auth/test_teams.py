"""The team table of a replica (auth/teams.py) when the key store's Redis goes away."""

from __future__ import annotations

import time

from asgi_llm.auth.teams import REFRESH_S
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
