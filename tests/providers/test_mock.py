"""The built-in mock provider (asgi_llm/providers/mock.py): what SDKs ask of it."""

import base64
import struct

import pytest
from openai import AsyncOpenAI

from tests.conftest import assert_error_shape


async def _embed(client, **fields):
    response = await client.post("/v1/embeddings", json={"model": "mock-1", "input": ["a", "b"], **fields})
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def test_embeddings_honour_base64_encoding(mock_client):
    floats = await _embed(mock_client)
    packed = await _embed(mock_client, encoding_format="base64")
    for plain, coded in zip(floats, packed, strict=True):
        assert isinstance(coded["embedding"], str)
        raw = base64.b64decode(coded["embedding"])
        decoded = struct.unpack(f"<{len(raw) // 4}f", raw)  # little-endian float32, as OpenAI sends
        assert decoded == pytest.approx(plain["embedding"], abs=1e-6)
    assert await _embed(mock_client, encoding_format="float") == floats


async def test_openai_sdk_default_encoding_decodes_to_the_float_answer(mock_client):
    # The SDKs ask for base64 unless told otherwise and decode it themselves (npm: blindly).
    sdk = AsyncOpenAI(base_url="http://proxy.test/v1", api_key="unused", http_client=mock_client)
    answer = await sdk.embeddings.create(model="mock-1", input=["a", "b"])
    floats = await _embed(mock_client)
    assert len(answer.data) == 2
    for got, want in zip(answer.data, floats, strict=True):
        assert got.embedding == pytest.approx(want["embedding"], abs=1e-6)


async def test_unknown_encoding_format_is_400(mock_client):
    response = await mock_client.post(
        "/v1/embeddings", json={"model": "mock-1", "input": "a", "encoding_format": "int8"}
    )
    assert assert_error_shape(response, 400)["param"] == "encoding_format"


async def test_passthrough_providers_relay_base64_untouched_and_cache_it_apart(asgi_client):
    from tests.conftest import upstream_model
    from tests.fakes.upstream import FakeUpstream

    with FakeUpstream("emb") as up:
        client = asgi_client(
            {"models": [upstream_model("emb-1", up.base_url)], "cache": {"backend": "memory://"}}
        )
        body = {"model": "emb-1", "input": "a"}
        plain = await client.post("/v1/embeddings", json=body)
        coded = await client.post("/v1/embeddings", json={**body, "encoding_format": "base64"})
        assert up.requests[-1].json["encoding_format"] == "base64"  # reached the upstream as sent
        assert coded.headers["x-cache"] == "miss"  # a float answer is never served for base64
        raw = base64.b64decode(coded.json()["data"][0]["embedding"])
        vector = plain.json()["data"][0]["embedding"]
        assert struct.unpack(f"<{len(vector)}f", raw) == pytest.approx(vector, abs=1e-6)
