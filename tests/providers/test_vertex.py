"""The `vertex` provider end to end: Gemini on Vertex AI behind a real `asgi-llm serve`, with
access tokens from the JWT bearer grant of a service-account key (tests/fakes/gemini.py's
FakeVertex issues them only for a grant signed by its own test key, and refuses expired
ones); the single-flight refresh (providers/google_auth.py); the config's checks; and the
key kept out of logs, errors and /admin/config."""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path
from typing import Any

import anthropic
import openai
import orjson
import pytest
from joserfc.jwk import RSAKey

from asgi_llm import Config, ConfigError, build_app
from asgi_llm.providers.clients import DirectTransport
from asgi_llm.providers.google_auth import AccessTokens, load_service_account
from tests.fakes.gemini import FakeVertex, Reply
from tests.harness import ProxyServer

USER = [{"role": "user", "content": "Say hello"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
PATH = "/v1/projects/test-project/locations/us-central1/publishers/google/models/{}:{}"


def vertex_deployment(ident: str, fake: FakeVertex, credentials: Path, **extra: Any) -> dict[str, Any]:
    return {
        "id": ident,
        "provider": "vertex",
        "model": "gemini-fake-1",
        "project": fake.project,
        "location": fake.location,
        "credentials": str(credentials),
        "base_url": fake.root_url,
        **extra,
    }


@pytest.fixture(scope="module")
def fake():
    with FakeVertex() as server:
        yield server


@pytest.fixture(scope="module")
def keys(fake, tmp_path_factory):
    directory = tmp_path_factory.mktemp("vertex-keys")
    good = fake.service_account_file(directory)
    (directory / "other").mkdir()
    wrong = fake.service_account_file(directory / "other", key=RSAKey.generate_key(2048))
    return good, wrong


@pytest.fixture(scope="module")
def proxy(fake, keys, tmp_path_factory):
    good, wrong = keys
    embed = vertex_deployment("vertex-embed", fake, good, model="gemini-embedding-fake")
    config = {
        "models": [
            {"name": "vertex", "deployments": [vertex_deployment("vertex-a", fake, good)]},
            {"name": "embed", "deployments": [embed]},
            {"name": "wrong-key", "deployments": [vertex_deployment("vertex-wrong", fake, wrong)]},
        ],
        "routing": {"retries": 0},
    }
    with ProxyServer(config, tmp_path_factory.mktemp("vertex")) as server:
        yield server


@pytest.fixture(autouse=True)
def clean(fake):
    fake.reset()
    fake.default = Reply()
    fake.token_lifetime_s = 3600


@pytest.fixture
def sdk(proxy):
    with openai.OpenAI(base_url=proxy.base_url, api_key="sk-client-key", max_retries=0, timeout=20) as client:
        yield client


def test_chat_with_a_token_from_the_service_accounts_grant(sdk, fake):
    for _ in range(3):
        completion = sdk.chat.completions.create(
            model="vertex", messages=[{"role": "system", "content": "Be brief."}, *USER]
        )
        assert completion.choices[0].message.content == "Hello from the fake Gemini."
    # The proxy may hold a token from an earlier test: at most one grant for these three.
    assert len(fake.grants) <= 1
    seen = fake.requests[-1]
    assert seen.path == PATH.format("gemini-fake-1", "generateContent")
    assert seen.headers["authorization"].startswith("Bearer ya29.fake-")
    assert "x-goog-api-key" not in seen.headers and seen.query == ""
    assert seen.json["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert not fake.refused


def test_the_grant_is_a_jwt_the_fake_verified(sdk, fake):
    fake.expire_tokens()  # the proxy's token is refused once: it fetches a new one and resends
    sdk.chat.completions.create(model="vertex", messages=USER)
    [claims] = fake.grants
    assert claims["iss"] == fake.email and claims["aud"] == fake.token_uri
    assert claims["scope"] == "https://www.googleapis.com/auth/cloud-platform"
    assert claims["exp"] - claims["iat"] == 3600
    assert [why for _, why in fake.refused if "authentication credentials" in why]  # the one 401


def test_stream_and_tools_over_two_turns(sdk, fake):
    fake.script(Reply(text="", calls=[("get_weather", {"city": "Oslo"})]))
    chunks = list(sdk.chat.completions.create(model="vertex", messages=USER, tools=[WEATHER], stream=True))
    [call] = [c for chunk in chunks if chunk.choices for c in chunk.choices[0].delta.tool_calls or ()]
    assert fake.requests[-1].path == PATH.format("gemini-fake-1", "streamGenerateContent")
    assert fake.requests[-1].query == "alt=sse"
    follow = sdk.chat.completions.create(
        model="vertex",
        tools=[WEATHER],
        messages=[
            *USER,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": call.id, "content": "Cold"},
        ],
    )
    assert follow.choices[0].message.content == "Hello from the fake Gemini."
    assert fake.requests[-1].json["contents"][-1]["parts"] == [
        {"functionResponse": {"name": "get_weather", "response": {"output": "Cold"}}}
    ]


def test_embeddings_go_through_predict(sdk, fake):
    result = sdk.embeddings.create(
        model="embed", input=["one two", "three"], encoding_format="float", dimensions=4
    )
    assert [len(d.embedding) for d in result.data] == [4, 4]
    assert result.usage.prompt_tokens == 3  # Vertex counts the tokens; the proxy reports them
    seen = fake.requests[-1]
    assert seen.path == PATH.format("gemini-embedding-fake", "predict")
    assert seen.json == {
        "instances": [{"content": "one two"}, {"content": "three"}],
        "parameters": {"outputDimensionality": 4},
    }


def test_messages_and_its_stream_through_vertex(proxy, fake):
    with anthropic.Anthropic(
        base_url=proxy.root_url, api_key="sk-client-key", max_retries=0, timeout=20
    ) as claude:
        message = claude.messages.create(model="vertex", max_tokens=20, messages=USER)
        assert message.content[0].text == "Hello from the fake Gemini."
        with claude.messages.stream(model="vertex", max_tokens=20, messages=USER) as stream:
            assert "".join(stream.text_stream) == "Hello from the fake Gemini."


def test_a_key_the_token_endpoint_does_not_know_is_a_502_without_the_key(sdk, fake, proxy):
    with pytest.raises(openai.InternalServerError) as caught:
        sdk.chat.completions.create(model="wrong-key", messages=USER)
    assert caught.value.status_code == 502
    assert caught.value.body["code"] in ("upstream_auth_failed", "upstream_error")
    assert [why for _, why in fake.refused] == ["Invalid JWT Signature."]
    log = proxy.log()
    assert "PRIVATE KEY" not in log and "Invalid JWT Signature" not in str(caught.value.body)
    assert "no access token: the token endpoint refused the grant: HTTP 400 invalid_grant" in log


def test_an_expired_token_is_never_sent(sdk, fake):
    fake.token_lifetime_s = 4  # usable 3.6 s by the proxy's count, stale after 3 s
    fake.expire_tokens()  # the proxy's token is refused once; it fetches a 4-second one
    sdk.chat.completions.create(model="vertex", messages=USER)
    fake.refused.clear()
    granted = len(fake.grants)
    time.sleep(4.1)  # the behaviour under test: the token's lifetime running out
    sdk.chat.completions.create(model="vertex", messages=USER)
    assert len(fake.grants) == granted + 1  # fetched before the call, not after a 401
    assert fake.refused == []


# -- the single-flight refresh (in process, on a clock of the test's own) ------------------------
async def test_concurrent_requests_share_one_grant_and_a_stale_token_is_refreshed_once(fake, keys):
    fake.grant_delay_s = 0.2  # long enough for every request to arrive while it runs
    now = [1000.0]
    transport = DirectTransport(5.0)
    tokens = AccessTokens(load_service_account(str(keys[0])), transport.send, clock=lambda: now[0])
    try:
        first = await asyncio.gather(*(tokens.get() for _ in range(20)))
        assert len(set(first)) == 1 and len(fake.grants) == 1  # nobody had a token: one grant for all
        now[0] += 3600 - 200  # stale (within 5 minutes of expiry), still valid
        started = time.monotonic()
        stale = await asyncio.gather(*(tokens.get() for _ in range(20)))
        assert set(stale) == set(first) and time.monotonic() - started < 0.15  # nobody waited
        await asyncio.sleep(0.5)  # the one background refresh
        assert len(fake.grants) == 2
        fresh = await tokens.get()
        assert fresh != first[0] and fresh in fake.tokens
        now[0] += 3600  # past expiry: everyone waits, on one grant
        expired = await asyncio.gather(*(tokens.get() for _ in range(20)))
        assert len(set(expired)) == 1 and len(fake.grants) == 3 and expired[0] != fresh
    finally:
        fake.grant_delay_s = 0.0
        await tokens.aclose()
        await transport.aclose()


async def test_a_waiter_that_leaves_does_not_cancel_the_grant(fake, keys):
    fake.grant_delay_s = 0.2
    transport = DirectTransport(5.0)
    tokens = AccessTokens(load_service_account(str(keys[0])), transport.send)
    try:
        leaving = asyncio.ensure_future(tokens.get())
        staying = asyncio.ensure_future(tokens.get())
        await asyncio.sleep(0.05)
        leaving.cancel()
        assert (await staying) in fake.tokens and len(fake.grants) == 1
    finally:
        fake.grant_delay_s = 0.0
        await tokens.aclose()
        await transport.aclose()


# -- config and secrets ----------------------------------------------------------------------------
def _vertex(**fields: Any) -> dict[str, Any]:
    deployment = {"id": "v", "provider": "vertex", "model": "gemini-2.5-pro", **fields}
    return {"models": [{"name": "v", "deployments": [deployment]}]}


@pytest.mark.parametrize(
    "fields, where, says",
    [
        ({"location": "us-central1", "credentials": "/sa.json"}, "project", "required for provider 'vertex'"),
        ({"project": "my-project", "credentials": "/sa.json"}, "location", "required for provider 'vertex'"),
        ({"project": "my-project", "location": "us-central1"}, "credentials", "service-account key file"),
        (
            {"project": "my-project", "location": "us-central1", "credentials": "/sa.json", "api_key": "t"},
            "api_key",
            "give one",
        ),
        (
            {"project": "My_Project", "location": "us-central1", "credentials": "/sa.json"},
            "project",
            "pattern",
        ),
        (
            {"project": "my-project", "location": "us-central1.evil.com", "credentials": "/s"},
            "location",
            "pattern",
        ),
    ],
)
def test_vertex_fields_are_checked_at_their_path(fields, where, says):
    with pytest.raises(ConfigError) as caught:
        Config.from_dict(_vertex(**fields))
    assert f"models[0].deployments[0].{where}: " in str(caught.value) and says in str(caught.value)


@pytest.mark.parametrize("name", ["project", "location", "credentials"])
def test_vertex_fields_apply_only_to_vertex(name):
    deployment = {"id": "g", "provider": "gemini", "model": "m", "api_key": "k", name: "us-central1"}
    with pytest.raises(ConfigError, match=rf"deployments\[0\]\.{name}: applies only to provider 'vertex'"):
        Config.from_dict({"models": [{"name": "g", "deployments": [deployment]}]})


def test_gemini_needs_a_key():
    with pytest.raises(ConfigError, match=r"deployments\[0\]\.api_key: is required for provider 'gemini'"):
        Config.from_dict(
            {"models": [{"name": "g", "deployments": [{"id": "g", "provider": "gemini", "model": "m"}]}]}
        )


async def test_admin_config_shows_the_key_files_path_and_never_a_token(asgi_client, keys):
    digest = "sha256:" + hashlib.sha256(b"admin-key").hexdigest()
    config = {
        **_vertex(project="my-project", location="europe-west4", api_key="ya29.static-token-value"),
        "auth": {
            "api_keys": [{"id": "root", "key_sha256": digest, "roles": ["admin"]}],
            "roles": {"admin": {"admin": True}},
        },
    }
    config["models"].append(
        {
            "name": "v2",
            "deployments": [
                {
                    "id": "v2",
                    "provider": "vertex",
                    "model": "m",
                    "project": "my-project",
                    "location": "global",
                    "credentials": str(keys[0]),
                }
            ],
        }
    )
    parsed = Config.from_dict(config)
    redacted = orjson.dumps(parsed.redacted()).decode()
    assert "ya29.static" not in redacted and "PRIVATE KEY" not in redacted
    client = asgi_client(app=build_app(parsed))
    shown = (await client.get("/admin/config", headers={"authorization": "Bearer admin-key"})).json()
    [first, second] = [m["deployments"][0] for m in shown["config"]["models"]]
    assert first["api_key"] == "***" and (first["project"], first["location"]) == (
        "my-project",
        "europe-west4",
    )
    assert second["credentials"] == str(keys[0])


def test_the_default_endpoint_is_the_locations_own():
    from asgi_llm.providers.gemini import VertexGeminiProvider as VertexProvider

    config = Config.from_dict(_vertex(project="p-123456", location="europe-west4", api_key="token"))
    deployment = config.models[0].deployments[0]
    assert VertexProvider().model_url(deployment) == (
        "https://europe-west4-aiplatform.googleapis.com/v1/projects/p-123456/locations/europe-west4"
        "/publishers/google/models/gemini-2.5-pro"
    )
    glob = Config.from_dict(_vertex(project="p-123456", location="global", api_key="token"))
    assert (
        VertexProvider()
        .model_url(glob.models[0].deployments[0])
        .startswith("https://aiplatform.googleapis.com/v1/projects/p-123456/locations/global/")
    )


async def test_a_static_token_is_sent_as_it_is(asgi_client, fake):
    value = "ya29.fake-static"
    from tests.fakes.gemini import IssuedToken

    fake.tokens[value] = IssuedToken(value, time.time() + 600)
    deployment = {
        "id": "static",
        "provider": "vertex",
        "model": "gemini-fake-1",
        "project": fake.project,
        "location": fake.location,
        "api_key": value,
        "base_url": fake.root_url,
    }
    client = asgi_client({"models": [{"name": "s", "deployments": [deployment]}]})
    response = await client.post("/v1/chat/completions", json={"model": "s", "messages": USER})
    assert response.status_code == 200, response.text
    assert fake.requests[-1].headers["authorization"] == f"Bearer {value}" and fake.grants == []


async def test_a_transport_factory_carries_the_grant_and_the_calls(asgi_client, keys, fake):
    import httpx2

    from asgi_llm import ProviderApp

    seen: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(f"{request.method} {request.url.path} {request.headers.get('authorization', '-')[:16]}")
        if request.url.path == "/token":
            return httpx2.Response(200, json={"access_token": "ya29.from-the-mock", "expires_in": 3600})
        answer = {"candidates": [{"content": {"parts": [{"text": "mocked"}]}, "finishReason": "STOP"}]}
        return httpx2.Response(200, json=answer)

    deployment = vertex_deployment("mocked", fake, keys[0])
    config = Config.from_dict({"models": [{"name": "m", "deployments": [deployment]}]})
    app = ProviderApp(config=config, transport_factory=lambda d: httpx2.MockTransport(handler))
    client = asgi_client(app=app)
    response = await client.post("/v1/chat/completions", json={"model": "m", "messages": USER})
    assert response.json()["choices"][0]["message"]["content"] == "mocked"
    assert seen == [
        "POST /token -",
        f"POST {PATH.format('gemini-fake-1', 'generateContent')} Bearer ya29.from",
    ]


def test_the_contracts_example_loads():
    import yaml

    example = yaml.safe_load(
        """
        - {id: g, provider: gemini, model: gemini-2.5-flash, api_key: "${GEMINI_API_KEY}"}
        - {id: v, provider: vertex, model: gemini-2.5-pro, project: p, location: us-central1,
           credentials: /secrets/sa.json}
        """
    )
    config = Config.from_dict(
        {"models": [{"name": "m", "deployments": example}]}, environ={"GEMINI_API_KEY": "k"}
    )
    assert [d.provider for d in config.models[0].deployments] == ["gemini", "vertex"]


def test_the_key_files_contents_in_place_of_its_path_are_refused_without_echoing_them(keys):
    content = keys[0].read_text()
    with pytest.raises(ConfigError) as caught:
        Config.from_dict(_vertex(project="p", location="us-central1", credentials=content))
    assert "credentials: must be the path of the key file, not its contents" in str(caught.value)
    assert "PRIVATE" not in str(caught.value) and "client_email" not in str(caught.value)


async def test_a_users_application_default_credentials(asgi_client, fake, tmp_path):
    """`authorized_user` credentials (gcloud auth application-default login): the refresh-token
    grant at the file's token_uri, the quota project named on every call."""
    user = fake.authorized_user_file(tmp_path, quota_project="billing-project")
    revoked = fake.authorized_user_file(tmp_path)
    revoked_client = orjson.loads(revoked.read_bytes())
    del fake.users[revoked_client["client_id"]]  # its refresh token no longer works
    config = {
        "models": [
            {"name": "u", "deployments": [vertex_deployment("user-adc", fake, user)]},
            {"name": "r", "deployments": [vertex_deployment("revoked-adc", fake, revoked)]},
        ],
        "routing": {"retries": 0},
    }
    client = asgi_client(config)
    for _ in range(2):
        response = await client.post("/v1/chat/completions", json={"model": "u", "messages": USER})
        assert response.status_code == 200, response.text
    [grant] = fake.grants  # one refresh-token grant, its token reused
    assert grant == {"client_id": orjson.loads(user.read_bytes())["client_id"]}
    assert fake.requests[-1].headers["x-goog-user-project"] == "billing-project"
    response = await client.post("/v1/chat/completions", json={"model": "r", "messages": USER})
    assert response.status_code == 502 and response.json()["error"]["code"] == "upstream_auth_failed"
    assert revoked_client["refresh_token"] not in response.text
    assert revoked_client["client_secret"] not in response.text
