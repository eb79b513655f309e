"""The provider registry (asgi_llm/providers/registry.py): a provider is an entry, and the
pool and ProviderApp find its wire format and transport there, never by its name."""

from __future__ import annotations

from typing import Any, get_args

import orjson
import pytest

from asgi_llm import Config, ProviderApp
from asgi_llm.config import schema
from asgi_llm.config.schema import Deployment
from asgi_llm.providers.openai import OpenAIProvider
from asgi_llm.providers.registry import REGISTRY, ProviderEntry, entry_for, provider_for
from asgi_llm.providers.transport import UpstreamRequest

ANSWER = {
    "id": "c1",
    "object": "chat.completion",
    "created": 0,
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "canned"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


def test_every_provider_the_config_accepts_has_an_entry():
    assert set(REGISTRY) == set(get_args(schema.Provider))


def test_an_unknown_provider_is_a_lookup_error_naming_it():
    with pytest.raises(LookupError, match="'watsonx' is not available"):
        provider_for("watsonx")


def test_only_the_mock_brings_its_own_transport():
    assert {name for name, entry in REGISTRY.items() if entry.transport is not None} == {"mock"}
    assert entry_for("openai-compatible").wire is provider_for("mock")  # one chat-only wire


def test_only_vertex_and_bedrock_wrap_the_pool_they_are_given():
    # Vertex AI adds an access token, Bedrock a SigV4 signature with credentials from AWS's chain.
    assert {name for name, entry in REGISTRY.items() if entry.wrap is not None} == {"vertex", "bedrock"}


def test_every_preset_is_the_openai_wire_with_its_own_quirks():
    from asgi_llm.providers.presets import PRESETS, PresetProvider

    for name in PRESETS:
        wire = provider_for(name)
        assert (
            isinstance(wire, PresetProvider)
            and isinstance(wire, OpenAIProvider)
            and wire.preset is PRESETS[name]
        )


def test_only_openai_and_azure_speak_the_responses_api_natively():
    native = {name for name, entry in REGISTRY.items() if getattr(entry.wire, "native_responses", False)}
    assert native == {"openai", "azure"}


async def test_the_mock_entrys_transport_answers_like_an_openai_server():
    deployment = Deployment(id="mock-1", provider="mock", model="mock-1")
    transport = entry_for("mock").transport
    assert transport is not None
    upstream = transport(deployment)
    body = orjson.dumps({"model": "mock-1", "messages": [{"role": "user", "content": "hi"}]})
    response = await upstream.send(UpstreamRequest("POST", "/chat/completions", {}, body))
    assert response.status_code == 200
    assert response.headers.get("Content-Type") == "application/json"
    answer = orjson.loads(b"".join([chunk async for chunk in response.aiter_bytes()]))
    await response.aclose()
    await upstream.aclose()
    assert answer["choices"][0]["message"]["content"].startswith("This is mock-1 answering")


class _Canned:
    """A provider's own transport: answers every request with ANSWER, keeps what it saw."""

    def __init__(self, seen: list[UpstreamRequest]) -> None:
        self.seen = seen

    async def send(self, request: UpstreamRequest) -> Any:
        self.seen.append(request)
        return _Answer()

    async def aclose(self) -> None:
        pass


class _Answer:
    status_code = 200
    headers = {"content-type": "application/json"}

    async def aiter_bytes(self) -> Any:
        yield orjson.dumps(ANSWER)

    async def aclose(self) -> None:
        pass


async def test_an_entrys_transport_serves_its_deployments_with_nothing_else_changed(monkeypatch, asgi_client):
    seen: list[UpstreamRequest] = []
    entry = ProviderEntry(OpenAIProvider(), transport=lambda deployment: _Canned(seen))
    monkeypatch.setitem(REGISTRY, "openai-compatible", entry)
    config = Config.from_dict(
        {
            "models": [
                {
                    "name": "m",
                    "deployments": [
                        {
                            "id": "d",
                            "provider": "openai-compatible",
                            "model": "m-up",
                            "base_url": "http://up.test/v1",
                        }
                    ],
                }
            ]
        }
    )
    client = asgi_client(app=ProviderApp(config=config))
    response = await client.post(
        "/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    )
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "canned"
    [request] = seen  # written by the entry's wire format, sent by its transport
    assert (request.method, request.url) == ("POST", "http://up.test/v1/chat/completions")
    assert orjson.loads(request.body)["model"] == "m-up"
