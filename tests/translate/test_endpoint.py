"""POST /v1/messages in process: the exchange's translation step with the whole stack
(asgi_llm/translate/endpoint.py). The real-server and SDK tests are in
tests/providers/test_anthropic.py."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from asgi_llm.context import LLMContext
from asgi_llm.translate.endpoint import MessagesResponder
from tests.conftest import assert_error_shape, mock_model
from tests.translate.test_stream import fold_events

BODY = {"model": "mock-1", "max_tokens": 20, "messages": [{"role": "user", "content": "hello there"}]}


async def test_a_message_answer_from_an_openai_style_deployment(mock_client):
    response = await mock_client.post("/v1/messages", json=BODY, headers={"anthropic-version": "2023-06-01"})
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == len(response.content)
    assert response.headers["x-llm-deployment"] == "mock-1-d"
    message = response.json()
    assert message["type"] == "message" and message["id"].startswith("msg_")
    assert message["content"] == [{"type": "text", "text": "This is mock-1 answering: hello there"}]
    assert message["stop_reason"] == "end_turn"
    assert message["usage"] == {"input_tokens": 2, "output_tokens": 6}


async def test_a_streamed_message_is_well_formed_events(mock_client):
    response = await mock_client.post("/v1/messages", json={**BODY, "stream": True})
    assert response.headers["content-type"].startswith("text/event-stream")
    message = fold_events(response.content)
    assert message["done"] and message["stop_reason"] == "end_turn"
    assert message["content"] == [{"type": "text", "text": "This is mock-1 answering: hello there"}]
    assert message["usage"]["output_tokens"] == 6


async def test_layers_see_a_chat_request(asgi_client):
    seen: list[LLMContext] = []

    async def terminal(scope: Any, receive: Any, send: Any) -> None:
        ctx = scope["state"]["llm"]
        seen.append(ctx)
        request = await receive()
        assert orjson.loads(request["body"]) == ctx.payload  # the replayed bytes say the same
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    from asgi_llm import AuthMiddleware, Config

    config = Config.from_dict({"models": [mock_model()]})
    client = asgi_client(app=AuthMiddleware(terminal, config=config))
    response = await client.post("/v1/messages", json={**BODY, "system": "Be brief.", "stream": True})
    assert response.status_code == 204
    ctx = seen[0]
    assert (ctx.endpoint, ctx.model, ctx.stream, ctx.include_usage) == ("chat", "mock-1", True, True)
    assert ctx.inbound_format == "anthropic"
    assert ctx.payload["messages"][0] == {"role": "system", "content": "Be brief."}


@pytest.mark.parametrize(
    "body,param",
    [
        ({"model": "mock-1", "max_tokens": 5}, "messages"),
        ({**BODY, "messages": [{"role": "system", "content": "x"}]}, "messages[0].role"),
        ({**BODY, "thinking": {"type": "enabled"}}, "thinking.budget_tokens"),
        ({**BODY, "mcp_servers": [{"type": "url", "url": "https://mcp.test", "name": "m"}]}, "mcp_servers"),
        ({"max_tokens": 5, "messages": BODY["messages"]}, "model"),
        ({"model": "mock-1", "messages": BODY["messages"]}, "max_tokens"),
        ({**BODY, "max_tokens": None}, "max_tokens"),
        ({**BODY, "max_tokens": "20"}, "max_tokens"),
    ],
)
async def test_bad_requests_are_400s_in_the_contracts_shape(mock_client, body, param):
    error = assert_error_shape(await mock_client.post("/v1/messages", json=body), 400)
    assert error["param"] == param


async def test_only_post(mock_client):
    assert_error_shape(await mock_client.get("/v1/messages"), 405)


async def test_unknown_model_is_a_404(mock_client):
    error = assert_error_shape(await mock_client.post("/v1/messages", json={**BODY, "model": "x"}), 404)
    assert error["code"] == "model_not_found"


async def test_cached_answers_go_out_in_anthropics_form_too(asgi_client):
    client = asgi_client({"models": [mock_model()], "cache": {"backend": "memory://"}})
    first = await client.post("/v1/messages", json=BODY)
    second = await client.post("/v1/messages", json=BODY)
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert second.json()["content"] == first.json()["content"]
    streamed = await client.post("/v1/messages", json={**BODY, "stream": True})
    assert streamed.headers["x-cache"] == "hit"
    assert fold_events(streamed.content)["content"] == first.json()["content"]
    # The chat endpoint shares the entry: the same request, in either format.
    chat = await client.post(
        "/v1/chat/completions", json={"model": "mock-1", "max_tokens": 20, "messages": BODY["messages"]}
    )
    assert chat.headers["x-cache"] == "hit"


async def test_role_granting_chat_may_call_messages(asgi_client):
    from asgi_llm.auth.keys import hash_key

    client = asgi_client(
        {
            "models": [mock_model()],
            "auth": {
                "api_keys": [{"id": "k", "key_sha256": hash_key("proxy-secret-1"), "roles": ["chatter"]}],
                "roles": {"chatter": {"models": ["*"], "endpoints": ["chat"]}},
            },
        }
    )
    response = await client.post("/v1/messages", json=BODY, headers={"x-api-key": "proxy-secret-1"})
    assert response.status_code == 200
    denied = await client.post("/v1/messages", json=BODY, headers={"x-api-key": "wrong"})
    assert_error_shape(denied, 401)


# -- the responder alone -----------------------------------------------------------------------
async def responder_output(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    from asgi_llm import Config

    responder = MessagesResponder(
        LLMContext(request_id="r", config=Config.from_dict({}), endpoint="chat"), send
    )
    for message in messages:
        await responder(message)
    return sent


async def test_error_answers_pass_untouched():
    start = {
        "type": "http.response.start",
        "status": 429,
        "headers": [(b"content-type", b"application/json")],
    }
    body = {"type": "http.response.body", "body": b'{"error": {}}'}
    assert await responder_output([start, body]) == [start, body]


async def test_an_answer_anthropic_cannot_carry_is_a_502():
    completion = {
        "choices": [
            {
                "message": {
                    "role": "assistant",
                    "tool_calls": [
                        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}
                    ],
                }
            }
        ]
    }
    out = orjson.dumps(completion)
    sent = await responder_output(
        [
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(out)).encode()),
                ],
            },
            {"type": "http.response.body", "body": out[:10], "more_body": True},
            {"type": "http.response.body", "body": out[10:]},
        ]
    )
    assert sent[0]["status"] == 502
    assert (b"content-length", str(len(sent[1]["body"])).encode()) in sent[0]["headers"]
    assert orjson.loads(sent[1]["body"])["error"]["code"] == "bad_upstream_response"


# -- native answers and the cache; count_tokens -------------------------------------------------
@pytest.fixture
def claude_fake():
    from tests.fakes.anthropic import FakeAnthropic

    with FakeAnthropic("claude-in-process") as fake:
        yield fake


def cached_claude(fake: Any) -> dict[str, Any]:
    return {
        "models": [
            {
                "name": "claude",
                "deployments": [
                    {
                        "id": "c",
                        "provider": "anthropic",
                        "model": "claude-up",
                        "base_url": fake.base_url,
                        "api_key": "k",
                    }
                ],
            },
            mock_model(),
        ],
        "cache": {"backend": "memory://"},
    }


async def test_a_native_answer_is_never_stored_as_a_chat_answer(asgi_client, claude_fake):
    client = asgi_client(cached_claude(claude_fake))
    body = {"model": "claude", "max_tokens": 20, "messages": [{"role": "user", "content": "hello there"}]}
    first = await client.post("/v1/messages", json=body)
    second = await client.post("/v1/messages", json=body)
    assert [r.headers["x-cache"] for r in (first, second)] == ["miss", "miss"]
    assert first.json()["content"] == second.json()["content"] and len(claude_fake.requests) == 2
    # A chat client's translated answer is a chat answer: stored, and a Messages client's hit.
    chat = {"model": "claude", "max_tokens": 20, "messages": [{"role": "user", "content": "hello there"}]}
    assert (await client.post("/v1/chat/completions", json=chat)).headers["x-cache"] == "miss"
    hit = await client.post("/v1/messages", json=body)
    assert hit.headers["x-cache"] == "hit" and len(claude_fake.requests) == 3
    assert hit.json()["content"] == [{"type": "text", "text": "Hello from the fake Claude."}]


async def test_a_request_whose_chat_form_leaves_fields_out_bypasses_the_cache(asgi_client, claude_fake):
    client = asgi_client(cached_claude(claude_fake))
    body = {
        "model": "claude",
        "max_tokens": 20,
        "container": "container_1",  # the fake knows it; chat cannot say it
        "messages": [{"role": "user", "content": "hello there"}],
    }
    response = await client.post("/v1/messages", json=body)
    assert response.status_code == 200 and response.headers["x-cache"] == "bypass"
    assert claude_fake.requests[-1].json["container"] == "container_1"
    refused = await client.post("/v1/messages", json={**body, "model": "mock-1"})
    assert assert_error_shape(refused, 400, "unsupported_parameter")["param"] == "container"


async def test_count_tokens_estimates_for_a_deployment_without_a_counting_api(mock_client):
    body = {
        "model": "mock-1",
        "messages": [{"role": "user", "content": "x" * 400}],
        "tools": [{"name": "f", "input_schema": {}}],
    }
    response = await mock_client.post("/v1/messages/count_tokens", json=body)
    assert response.status_code == 200 and response.headers["x-llm-token-estimate"] == "true"
    assert response.json()["input_tokens"] == (400 + len(b'{"name":"f","input_schema":{}}')) // 4 + 1
    missing = await mock_client.post("/v1/messages/count_tokens", json={"model": "mock-1"})
    assert assert_error_shape(missing, 400)["param"] == "messages"
    assert (await mock_client.post("/messages/count_tokens", json=body)).status_code == 200  # no /v1


async def test_only_the_anthropic_version_and_beta_headers_are_kept_for_the_upstream(asgi_client):
    seen: list[LLMContext] = []

    async def terminal(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["state"]["llm"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    from asgi_llm import AuthMiddleware, Config

    client = asgi_client(app=AuthMiddleware(terminal, config=Config.from_dict({"models": [mock_model()]})))
    headers = [
        ("anthropic-version", "2023-06-01"),
        ("anthropic-beta", "a-2025-01-01"),
        ("anthropic-beta", "b-2025-02-02, c-2025-03-03"),
        ("x-api-key", "sk-client"),
        ("anthropic-dangerous-direct-browser-access", "true"),
    ]
    assert (await client.post("/v1/messages", json=BODY, headers=headers)).status_code == 204
    call = seen[0].messages
    assert call is not None and call.request == BODY and not call.native
    assert call.headers == {
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "a-2025-01-01,b-2025-02-02, c-2025-03-03",
    }
    long = [("anthropic-beta", "x" * 3000)]
    assert (await client.post("/v1/messages/count_tokens", json=BODY, headers=long)).status_code == 204
    assert seen[1].messages is not None and seen[1].messages.headers == {}
    assert seen[1].endpoint == "count_tokens"
