"""An upstream that refuses the proxy's own credentials (401/403: a key revoked, a Gemini key
Google calls invalid, a Vertex token refused, an AWS signature refused: test_bedrock.py) is
the deployment's failure, not the client's: tried on the next deployment, cooled down at
once, and when nothing answers a 502 `upstream_error` / `upstream_auth_failed` with the
provider's message, never a 401 or 403 an SDK would read as its own key being wrong."""

from __future__ import annotations

import pytest

from asgi_llm.errors import UpstreamStatus
from tests.conftest import assert_error_shape
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.anthropic import Reply as ClaudeReply
from tests.fakes.gemini import FakeGemini, FakeVertex
from tests.fakes.upstream import Behavior, FakeUpstream

USER = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def ups():
    with FakeUpstream("refusing") as a, FakeUpstream("answering") as b:
        yield a, b


@pytest.fixture(autouse=True)
def reset(ups):
    for up in ups:
        up.reset()
        up.default = Behavior()


def openai_like(up, ident, **extra):
    return {
        "id": ident,
        "provider": "openai-compatible",
        "model": "gpt-4o-mini",
        "base_url": up.base_url,
        "api_key": "sk-upstream-secret-" + ident,
        **extra,
    }


async def chat(client, model="m"):
    return await client.post("/v1/chat/completions", json={"model": model, "messages": USER})


@pytest.mark.parametrize("status", [401, 403])
def test_a_refusal_of_the_proxys_credentials_is_a_retryable_502(status):
    error = UpstreamStatus(
        status, "Incorrect API key provided.", deployment="d", error_code="invalid_api_key"
    )
    assert (error.status, error.type, error.code, error.retryable) == (
        502,
        "upstream_error",
        "upstream_auth_failed",
        True,
    )
    assert error.message == (
        f"The upstream refused the proxy's credentials for this deployment (HTTP {status} invalid_api_key): "
        "Incorrect API key provided."
    )
    assert UpstreamStatus(404, "No such model.").status == 404  # other 4xx are passed on


async def test_it_fails_over_and_the_deployment_cools_down_at_once(asgi_client, ups):
    refusing, answering = ups
    refusing.default = Behavior(status=401, error_message="Incorrect API key provided: sk-upstream-secret-a")
    client = asgi_client(
        {"models": [{"name": "m", "deployments": [openai_like(refusing, "a"), openai_like(answering, "b")]}]}
    )
    first = await chat(client)
    assert (first.status_code, first.headers["x-llm-deployment"], first.headers["x-llm-attempts"]) == (
        200,
        "b",
        "2",
    )
    second = await chat(client)
    assert (second.headers["x-llm-deployment"], second.headers["x-llm-attempts"]) == ("b", "1")
    assert len(refusing.requests) == 1


async def test_when_nothing_answers_the_client_gets_a_502_with_the_providers_words(asgi_client, ups):
    refusing, _ = ups
    refusing.default = Behavior(status=403, error_message="Project sk-upstream-secret-a is not allowed.")
    client = asgi_client({"models": [{"name": "m", "deployments": [openai_like(refusing, "a")]}]})
    response = await chat(client)
    error = assert_error_shape(response, 502, "upstream_auth_failed")
    assert error["type"] == "upstream_error" and "is not allowed" in error["message"]
    assert "sk-upstream-secret-a" not in response.text
    assert len(refusing.requests) == 1  # retries: 2, but refused credentials are not retried


async def test_a_gemini_key_google_calls_invalid(asgi_client, ups):
    _, answering = ups
    with FakeGemini() as gemini:
        wrong = {
            "id": "g",
            "provider": "gemini",
            "model": "gemini-fake-1",
            "api_key": "AIzaWRONG",
            "base_url": gemini.root_url,
        }
        alone = asgi_client({"models": [{"name": "m", "deployments": [wrong]}]})
        error = assert_error_shape(await chat(alone), 502, "upstream_auth_failed")
        assert "(HTTP 401 invalid_argument): API key not valid" in error["message"]
        both = asgi_client({"models": [{"name": "m", "deployments": [wrong, openai_like(answering, "b")]}]})
        assert (await chat(both)).headers["x-llm-deployment"] == "b"


async def test_a_vertex_token_refused_and_an_anthropic_permission_error(asgi_client):
    with FakeVertex() as vertex, FakeAnthropic() as claude:
        refused_token = {
            "id": "v",
            "provider": "vertex",
            "model": "gemini-fake-1",
            "project": vertex.project,
            "location": vertex.location,
            "api_key": "ya29.never-issued",
            "base_url": vertex.root_url,
        }
        claude.default = ClaudeReply(status=403, error_message="This organization may not use this model.")
        forbidden = {
            "id": "c",
            "provider": "anthropic",
            "model": "claude-fake-1",
            "api_key": "sk-ant-upstream",
            "base_url": claude.base_url,
        }
        client = asgi_client(
            {
                "models": [
                    {"name": "v", "deployments": [refused_token]},
                    {"name": "c", "deployments": [forbidden]},
                ]
            }
        )
        error = assert_error_shape(await chat(client, "v"), 502, "upstream_auth_failed")
        assert "invalid authentication credentials" in error["message"] and "ya29" not in error["message"]
        error = assert_error_shape(await chat(client, "c"), 502, "upstream_auth_failed")
        assert "may not use this model" in error["message"]
