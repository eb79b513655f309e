"""ProviderApp's pools across config reloads: a removed deployment's pool closes once idle."""

from __future__ import annotations

import asyncio

from asgi_llm import Config, ConfigManager, ProviderApp
from tests.fakes.upstream import Behavior, FakeUpstream
from tests.waiting import await_until

USER = [{"role": "user", "content": "hi"}]


def config(*models):
    return Config.from_dict({"models": list(models)})


def model(name, up):
    return {
        "name": name,
        "deployments": [{"id": name, "provider": "openai-compatible", "model": "m", "base_url": up.base_url}],
    }


async def test_removed_deployment_pool_closes_after_its_last_request(asgi_client):
    with FakeUpstream("pool") as up:
        manager = ConfigManager(config(model("a", up), model("b", up)))
        app = ProviderApp(config=manager)
        client = asgi_client(app=app)
        assert (
            await client.post("/v1/chat/completions", json={"model": "a", "messages": USER})
        ).status_code == 200
        up.default = Behavior(delay_s=0.5)
        slow = asyncio.create_task(client.post("/v1/chat/completions", json={"model": "a", "messages": USER}))
        await await_until(lambda: len(up.requests) == 2, message="the slow request at the upstream")
        manager.replace(config(model("b", up)))  # "a" is gone while a request still uses it
        assert "a" in app.clients._transports
        response = await slow
        assert response.status_code == 200  # the in-flight request finished on its snapshot
        await await_until(lambda: "a" not in app.clients._transports, message="the pool of a closed")
        up.default = Behavior()
        assert (
            await client.post("/v1/chat/completions", json={"model": "a", "messages": USER})
        ).status_code == 404
