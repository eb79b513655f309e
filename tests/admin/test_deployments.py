"""GET /admin/deployments: the live state of this process's deployments, for admins only."""

from __future__ import annotations

from asgi_llm import Config, build_app
from tests.dashboard.conftest import ROOT_KEY, USER_KEY, document

ROOT = {"authorization": f"Bearer {ROOT_KEY}"}


async def test_cooldowns_latency_and_in_flight_of_each_deployment(asgi_client):
    config = document()
    config["models"].append(
        {"name": "m2", "deployments": [{"id": "m2-d", "provider": "mock", "model": "m2"}]}
    )
    stack = build_app(Config.from_dict(config))
    client = asgi_client(app=stack)
    chat = {"model": "m1", "messages": [{"role": "user", "content": "hi"}]}
    assert (await client.post("/v1/chat/completions", json=chat, headers=ROOT)).status_code == 200
    stack.services.cooldowns.cool_for("m2-d", 20)
    answer = await client.get("/admin/deployments", headers=ROOT)
    assert answer.status_code == 200
    body = answer.json()
    rows = {row["id"]: row for row in body["data"]}
    assert (
        rows["m1-d"]["samples"] == 1 and rows["m1-d"]["latency_ewma_ms"] >= 0 and not rows["m1-d"]["cooling"]
    )
    assert (
        rows["m2-d"]["cooling"]
        and 0 < rows["m2-d"]["cooldown_s"] <= 20
        and rows["m2-d"]["latency_ewma_ms"] is None
    )
    assert rows["m1-d"]["provider"] == "mock" and rows["m1-d"]["model"] == "m1"
    assert body["in_flight"] == 0 and isinstance(body["degraded"], dict)


async def test_only_admins_read_it(asgi_client):
    client = asgi_client(document())
    denied = await client.get("/admin/deployments", headers={"authorization": f"Bearer {USER_KEY}"})
    assert denied.status_code == 403
    assert (await client.get("/admin/deployments")).status_code == 401
