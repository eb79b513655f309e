"""ResponsesMiddleware and the exchange's Responses step, in process: bounds, refusals, the
read routes' pagination, a store that is down."""

from __future__ import annotations

import pytest

from tests.conftest import assert_error_shape, mock_model


@pytest.fixture
def client(asgi_client):
    return asgi_client({"models": [mock_model()]})


async def test_create_then_read_every_route(client):
    created = (await client.post("/v1/responses", json={"model": "mock-1", "input": "hi there"})).json()
    assert created["object"] == "response" and created["status"] == "completed"
    assert (await client.get(f"/v1/responses/{created['id']}")).json() == created
    items = (await client.get(f"/v1/responses/{created['id']}/input_items")).json()
    assert items["object"] == "list" and [i["role"] for i in items["data"]] == ["user"]
    assert items["first_id"] == items["last_id"] == items["data"][0]["id"] and items["has_more"] is False
    cancel = await client.post(f"/v1/responses/{created['id']}/cancel")
    assert_error_shape(cancel, 400, "response_not_cancellable")
    deleted = await client.delete(f"/v1/responses/{created['id']}")
    assert deleted.json() == {"id": created["id"], "object": "response", "deleted": True}
    for path in (f"/v1/responses/{created['id']}", f"/responses/{created['id']}/input_items"):
        assert_error_shape(await client.get(path), 404, "response_not_found")
    assert_error_shape(await client.delete(f"/v1/responses/{created['id']}"), 404, "response_not_found")


async def test_input_items_pages_in_both_orders(client):
    turns = [{"role": "user", "content": f"turn {i}"} for i in range(5)]
    created = (await client.post("/v1/responses", json={"model": "mock-1", "input": turns})).json()
    url = f"/v1/responses/{created['id']}/input_items"
    newest = (await client.get(url, params={"limit": 2})).json()
    assert [i["content"][0]["text"] for i in newest["data"]] == ["turn 4", "turn 3"] and newest["has_more"]
    rest = (await client.get(url, params={"limit": 10, "after": newest["last_id"]})).json()
    assert [i["content"][0]["text"] for i in rest["data"]] == ["turn 2", "turn 1", "turn 0"]
    oldest = (await client.get(url, params={"order": "asc", "limit": 1})).json()
    assert oldest["data"][0]["content"][0]["text"] == "turn 0"
    for bad in ({"limit": 0}, {"limit": 101}, {"order": "up"}, {"after": "msg_nope"}):
        assert_error_shape(await client.get(url, params=bad), 400)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "mock-1", "input": "hi", "background": True}, "background"),
        ({"model": "mock-1", "input": "hi", "tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"model": "mock-1", "input": "hi", "frobnicate": 1}, "frobnicate"),
        ({"model": "mock-1", "input": "hi", "previous_response_id": "resp_unknown"}, "previous_response_id"),
    ],
)
async def test_what_cannot_be_served_is_refused_naming_the_field(client, body, param):
    response = await client.post("/v1/responses", json=body)
    assert response.status_code in (400, 404)
    assert_error_shape(response, response.status_code)
    assert response.json()["error"]["param"] == param


async def test_bodies_are_bounded_like_chat(asgi_client):
    client = asgi_client({"models": [mock_model()], "server": {"max_body_bytes": 1_000_000}})
    huge = {"model": "mock-1", "input": "x" * 2_000_000}
    assert_error_shape(await client.post("/v1/responses", json=huge), 413)
    deep = b'{"model": "mock-1", "input": ' + b"[" * 100 + b"]" * 100 + b"}"
    response = await client.post("/v1/responses", content=deep, headers={"content-type": "application/json"})
    assert_error_shape(response, 400, "json_too_deep")


async def test_a_store_that_is_down_still_answers_new_turns_but_not_reads(asgi_client, no_secrets_in_logs):
    client = asgi_client(
        {"models": [mock_model()], "responses": {"store": "redis://127.0.0.1:1/0", "timeout_s": 0.2}}
    )
    created = await client.post("/v1/responses", json={"model": "mock-1", "input": "hi"})
    assert created.status_code == 200
    assert any("not stored" in line for line in no_secrets_in_logs.lines)
    assert_error_shape(
        await client.get(f"/v1/responses/{created.json()['id']}"), 503, "dependency_unavailable"
    )
    follow = {"model": "mock-1", "input": "and?", "previous_response_id": created.json()["id"]}
    assert_error_shape(await client.post("/v1/responses", json=follow), 503, "dependency_unavailable")
