"""The exchange's front door: body cap, JSON limits, field checks (asgi_llm/request.py)."""

import pytest

from tests.conftest import assert_error_shape

CHAT = {"model": "mock-1", "messages": [{"role": "user", "content": "hi"}]}


async def post(client, body, headers=None, path="/v1/chat/completions"):
    headers = {"content-type": "application/json", **(headers or {})}
    return await client.post(path, content=body, headers=headers)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "invalid_json"),
        (b"", "invalid_json"),
        (b"[1, 2]", "invalid_json"),
        (b"[" * 100_000, "json_too_deep"),
        (b'{"a":' * 70 + b"1" + b"}" * 70, "json_too_deep"),
        (b'{"model": "\xff\xfe"}', "invalid_utf8"),
        (b'{"model": "\\ud800", "messages": []}', "invalid_utf8"),
        (b'{"model": NaN}', "invalid_json"),
    ],
)
async def test_malformed_bodies_get_400(mock_client, body, code):
    response = await post(mock_client, body)
    assert_error_shape(response, 400, code)
    # and the server goes on serving
    assert (
        await post(mock_client, b'{"model":"mock-1","messages":[{"role":"user","content":"x"}]}')
    ).status_code == 200


@pytest.mark.parametrize(
    ("patch", "code", "param"),
    [
        ({"model": None}, "missing_model", "model"),
        ({"model": 3}, "invalid_type", "model"),
        ({"messages": "hi"}, "invalid_type", "messages"),
        ({"messages": []}, "invalid_type", "messages"),
        ({"messages": [{"content": "no role"}]}, "invalid_type", "messages[0]"),
        ({"stream": "yes"}, "invalid_type", "stream"),
        ({"n": 1_000_000}, "param_too_large", "n"),
        ({"max_tokens": "10"}, "invalid_type", "max_tokens"),
        ({"max_tokens": 0}, "invalid_value", "max_tokens"),
        ({"messages": [{"role": "user", "content": "x"}] * 10_001}, "too_many_messages", "messages"),
        ({"api_base": "http://127.0.0.1:1"}, "unsupported_parameter", "api_base"),
        (
            {"metadata": {"nested": {"base_url": "http://evil"}}},
            "unsupported_parameter",
            "metadata.nested.base_url",
        ),
        ({"extra": [{"api_key": "sk-x"}]}, "unsupported_parameter", "extra.0.api_key"),
    ],
)
async def test_bad_fields_get_400_naming_the_param(mock_client, patch, code, param):
    body = {**CHAT, **patch}
    if patch.get("model", "") is None:
        del body["model"]
    import orjson

    response = await post(mock_client, orjson.dumps(body))
    error = assert_error_shape(response, 400, code)
    assert error["param"] == param


async def test_tool_schemas_may_name_redirect_fields(mock_client):
    import orjson

    tool = {
        "type": "function",
        "function": {
            "name": "fetch",
            "parameters": {"type": "object", "properties": {"base_url": {"type": "string"}}},
        },
    }
    response = await post(mock_client, orjson.dumps({**CHAT, "tools": [tool]}))
    assert response.status_code == 200


async def test_body_over_the_cap_gets_413(asgi_client):
    from tests.conftest import mock_model

    client = asgi_client({"models": [mock_model()], "server": {"max_body_bytes": 2048}})
    filler = "x" * 2048
    import orjson

    response = await post(client, orjson.dumps({**CHAT, "messages": [{"role": "user", "content": filler}]}))
    assert_error_shape(response, 413, "request_too_large")
    small = orjson.dumps(CHAT)
    assert (await post(client, small)).status_code == 200


async def test_non_json_content_type_gets_415(mock_client):
    response = await mock_client.post(
        "/v1/chat/completions",
        content=b"model=x",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert_error_shape(response, 415, "unsupported_media_type")


async def test_wrong_method_gets_405(mock_client):
    response = await mock_client.get("/v1/chat/completions")
    error = assert_error_shape(response, 405, "method_not_allowed")
    assert error["type"] == "invalid_request_error"
    assert response.headers["allow"] == "POST"


async def test_unknown_model_gets_404_model_not_found(mock_client):
    import orjson

    response = await post(mock_client, orjson.dumps({**CHAT, "model": "gpt-9"}))
    error = assert_error_shape(response, 404, "model_not_found")
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize("spelling", ["MOCK-1", " mock-1 ", "ｍｏｃｋ-1"])
async def test_model_spellings_resolve_to_the_same_model(mock_client, spelling):
    import orjson

    response = await post(mock_client, orjson.dumps({**CHAT, "model": spelling}))
    assert response.status_code == 200
    assert response.headers["x-llm-deployment"] == "mock-1-d"


async def test_zero_width_model_name_is_not_resolved(mock_client):
    import orjson

    response = await post(mock_client, orjson.dumps({**CHAT, "model": "mock\u200b-1"}))
    assert_error_shape(response, 404, "model_not_found")


async def test_request_id_is_echoed_or_made(mock_client):
    import orjson

    body = orjson.dumps(CHAT)
    response = await post(mock_client, body, {"x-request-id": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    response = await post(mock_client, body, {"x-request-id": "bad id\twith junk"})
    assert response.headers["x-request-id"] != "bad id\twith junk"
    assert len(response.headers["x-request-id"]) == 24


async def test_unknown_paths_get_404_in_error_shape(mock_client):
    response = await mock_client.get("/v2/nothing")
    assert_error_shape(response, 404, "unknown_url")


async def test_health_endpoints(mock_client):
    assert (await mock_client.get("/healthz")).json() == {"status": "ok"}
    assert (await mock_client.get("/readyz")).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/chat/completions", CHAT),
        ("POST", "/completions", {"model": "mock-1", "prompt": "hi"}),
        ("POST", "/embeddings", {"model": "mock-1", "input": "hi"}),
        ("GET", "/models", None),
        ("GET", "/models/mock-1", None),
    ],
)
async def test_every_v1_route_answers_without_the_prefix(mock_client, method, path, body):
    unversioned = await mock_client.request(method, path, json=body)
    versioned = await mock_client.request(method, "/v1" + path, json=body)
    assert unversioned.status_code == versioned.status_code == 200, unversioned.text
    assert unversioned.json().keys() == versioned.json().keys()


@pytest.mark.parametrize("path", ["/config", "/v1/admin/config", "/admin", "/v1/models/"])
async def test_admin_routes_have_no_unversioned_twin(mock_client, path):
    assert_error_shape(await mock_client.get(path), 404, "unknown_url")


async def test_models_retrieve_answers_a_served_model(mock_client):
    response = await mock_client.get("/v1/models/mock-1")
    assert response.status_code == 200
    assert response.json() == {"id": "mock-1", "object": "model", "created": 0, "owned_by": "asgi-llm"}
    # Any spelling the catalog resolves answers with the served name.
    assert (await mock_client.get("/v1/models/MOCK-1")).json()["id"] == "mock-1"


async def test_models_retrieve_of_an_unknown_model_is_404(mock_client):
    error = assert_error_shape(await mock_client.get("/v1/models/gpt-9"), 404, "model_not_found")
    assert error["type"] == "invalid_request_error" and error["param"] == "model"


async def test_models_retrieve_takes_names_with_slashes(asgi_client):
    deployment = {"id": "llama", "provider": "mock", "model": "llama"}
    client = asgi_client({"models": [{"name": "meta-llama/Llama-3", "deployments": [deployment]}]})
    response = await client.get("/v1/models/meta-llama/Llama-3")
    assert response.status_code == 200 and response.json()["id"] == "meta-llama/Llama-3"


async def test_models_retrieve_hides_a_model_the_caller_may_not_use(asgi_client):
    from asgi_llm.auth.keys import hash_key
    from tests.conftest import mock_model

    client = asgi_client(
        {
            "models": [mock_model("mock-1"), mock_model("secret-1")],
            "auth": {
                "api_keys": [{"id": "u", "key_sha256": hash_key("key-of-u"), "roles": ["user"]}],
                "roles": {"user": {"models": ["mock-*"], "endpoints": ["models"]}},
            },
        }
    )
    headers = {"authorization": "Bearer key-of-u"}
    assert (await client.get("/v1/models/mock-1", headers=headers)).status_code == 200
    hidden = await client.get("/v1/models/secret-1", headers=headers)
    missing = await client.get("/v1/models/nothing-1", headers=headers)
    assert_error_shape(hidden, 404, "model_not_found")
    assert (
        hidden.json()["error"]["message"].replace("secret", "nothing") == missing.json()["error"]["message"]
    )
    assert_error_shape(await client.get("/v1/models/mock-1"), 401)


async def test_compatibility_doc_matches_the_routes(mock_client):
    import re
    from pathlib import Path

    from asgi_llm.request import ENDPOINTS

    doc = (Path(__file__).parents[1] / "docs" / "compatibility.md").read_text()
    rows = dict(re.findall(r"^\| `(?:GET|POST) (/v1/[^`]+)`[^|]*\| (yes|no) \|", doc, re.M))
    served = {path for path, (name, _) in ENDPOINTS.items() if not name.startswith("admin")}
    assert served <= {path for path, answer in rows.items() if answer == "yes"}
    for path, answer in rows.items():
        if answer == "no":  # what the page says is not served really is a 404
            concrete = path.replace("{id}", "resp_1")
            response = await mock_client.post(concrete, json={"model": "mock-1", "max_tokens": 5})
            assert_error_shape(response, 404)
