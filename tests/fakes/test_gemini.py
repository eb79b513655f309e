"""The Gemini and Vertex fakes refuse what Google refuses: otherwise the provider tests that
use them would prove nothing."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

import httpx2
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.fakes.gemini import FakeGemini, FakeVertex, Reply

USER = {"role": "user", "parts": [{"text": "Hi"}]}


@pytest.fixture(scope="module")
def gemini():
    with FakeGemini() as fake:
        yield fake


@pytest.fixture(scope="module")
def vertex():
    with FakeVertex() as fake:
        yield fake


def post(
    fake: FakeGemini, body: Any, *, method: str = "generateContent", model: str = "gemini-fake-1", **kw: Any
):
    headers = {"x-goog-api-key": fake.api_key, **kw.pop("headers", {})}
    url = f"{fake.root_url}/v1beta/models/{model}:{method}"
    return httpx2.post(url, json=body, headers=headers, timeout=10, **kw)


def test_a_good_request_is_answered(gemini):
    answer = post(gemini, {"contents": [USER]}).json()
    assert answer["candidates"][0]["content"]["parts"] == [{"text": "Hello from the fake Gemini."}]


@pytest.mark.parametrize(
    "body, says",
    [
        ({"contents": [USER], "generation_config": {}}, 'Unknown name "generation_config"'),
        ({"contents": [USER], "generationConfig": {"max_tokens": 5}}, 'Unknown name "max_tokens"'),
        ({"contents": []}, "contents is not specified"),
        ({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}, "role: must be user or model"),
        ({"contents": [{"role": "user", "parts": [{"image": "x"}]}]}, "a part holds exactly one"),
        (
            {
                "contents": [USER],
                "tools": [{"functionDeclarations": [{"name": "f", "parameters": {"type": "OBJECT"}}]}],
            },
            "should be non-empty for OBJECT type",
        ),
        (
            {
                "contents": [USER],
                "tools": [
                    {
                        "functionDeclarations": [
                            {"name": "f", "parameters": {"type": "object", "properties": {}}}
                        ]
                    }
                ],
            },
            "type: invalid value",
        ),
        (
            {
                "contents": [
                    USER,
                    {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]},
                    {"role": "user", "parts": [{"text": "no response"}]},
                    {"role": "model", "parts": [{"text": "?"}]},
                    {
                        "role": "user",
                        "parts": [{"functionResponse": {"name": "f", "response": {}}}],
                    },
                ]
            },
            "number of function response parts",
        ),
        (
            {"contents": [USER], "generationConfig": {"responseSchema": {"type": "STRING"}}},
            "needs response_mime_type",
        ),
        ({"contents": [USER], "generationConfig": {"logprobs": 3}}, "only valid if response_logprobs"),
        ({"contents": [USER], "tools": [{"googleSearch": True}]}, "googleSearch takes an object"),
        (
            {"contents": [USER], "tools": [{"googleSearch": {}, "urlContext": {}}]},
            "one of functionDeclarations",
        ),
        (
            {"contents": [USER], "generationConfig": {"responseLogprobs": True, "logprobs": 21}},
            "generation_config.logprobs",
        ),
        ({"contents": [USER], "generationConfig": {"responseLogprobs": "yes"}}, "response_logprobs"),
    ],
)
def test_what_google_refuses_is_refused(gemini, body, says):
    response = post(gemini, body)
    assert response.status_code == 400 and says in response.json()["error"]["message"]


def test_the_key_is_checked_and_never_taken_from_the_url(gemini):
    assert post(gemini, {"contents": [USER]}, headers={"x-goog-api-key": "AIzaWRONG"}).status_code == 400
    in_url = httpx2.post(
        f"{gemini.root_url}/v1beta/models/gemini-fake-1:generateContent?key={gemini.api_key}",
        json={"contents": [USER]},
        timeout=10,
    )
    assert in_url.status_code == 400 and "query string" in in_url.json()["error"]["message"]
    assert post(gemini, {"contents": [USER]}, model="gemini-nope").status_code == 404


def test_a_signed_call_must_come_back_signed(gemini):
    gemini.script(Reply(text="", calls=[("f", {})], signature="c2ln"))
    post(gemini, {"contents": [USER]})
    turn = [
        USER,
        {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"output": "x"}}}]},
    ]
    refused = post(gemini, {"contents": turn})
    assert refused.status_code == 400 and "thought_signature" in refused.json()["error"]["message"]
    turn[1]["parts"][0]["thoughtSignature"] = "c2ln"
    assert post(gemini, {"contents": turn}).status_code == 200


# -- Vertex: the token endpoint and the bearer check -------------------------------------------------
def grant(vertex: FakeVertex, key: RSAKey, **claims: Any) -> httpx2.Response:
    now = int(time.time())
    body = {
        "iss": vertex.email,
        "aud": vertex.token_uri,
        "scope": "https://www.googleapis.com/auth/cloud-platform",
        "iat": now,
        "exp": now + 3600,
        **claims,
    }
    assertion = jwt.encode({"alg": "RS256", "kid": vertex.key_id}, body, key, algorithms=["RS256"])
    form = urlencode({"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion})
    headers = {"content-type": "application/x-www-form-urlencoded"}
    return httpx2.post(vertex.token_uri, content=form, headers=headers, timeout=10)


def test_tokens_only_for_a_grant_signed_by_the_accounts_key(vertex):
    good = grant(vertex, vertex._key)
    assert good.status_code == 200 and good.json()["access_token"].startswith("ya29.fake-")
    assert grant(vertex, RSAKey.generate_key(2048)).json()["error_description"] == "Invalid JWT Signature."
    now = int(time.time())
    for claims in (
        {"iat": now - 7200, "exp": now - 3600},
        {"exp": now + 7200},
        {"aud": "https://elsewhere/token"},
        {"scope": "email"},
    ):
        assert grant(vertex, vertex._key, **claims).status_code == 400, claims


def test_the_api_wants_an_unexpired_token_it_issued(vertex):
    url = (
        f"{vertex.root_url}/v1/projects/test-project/locations/us-central1"
        "/publishers/google/models/gemini-fake-1:generateContent"
    )
    token = grant(vertex, vertex._key).json()["access_token"]
    assert (
        httpx2.post(
            url, json={"contents": [USER]}, headers={"authorization": f"Bearer {token}"}, timeout=10
        ).status_code
        == 200
    )
    assert (
        httpx2.post(
            url, json={"contents": [USER]}, headers={"authorization": "Bearer ya29.made-up"}, timeout=10
        ).status_code
        == 401
    )
    vertex.expire_tokens()
    assert (
        httpx2.post(
            url, json={"contents": [USER]}, headers={"authorization": f"Bearer {token}"}, timeout=10
        ).status_code
        == 401
    )
    wrong = url.replace("test-project", "other-project")
    assert httpx2.post(wrong, json={"contents": [USER]}, timeout=10).status_code == 404
