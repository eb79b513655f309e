"""Where credentials may and may not come from (asgi_llm/auth/credentials.py)."""

import pytest

from asgi_llm.auth.credentials import extract_credential
from asgi_llm.errors import AuthenticationFailed, InvalidRequest


def scope(headers=(), query=b""):
    return {"headers": [(k.encode(), v.encode()) for k, v in headers], "query_string": query}


@pytest.mark.parametrize("name", ["authorization", "api-key", "x-api-key"])
def test_each_header_carries_a_key(name):
    value = "Bearer sk-1" if name == "authorization" else "sk-1"
    assert extract_credential(scope([(name, value)])) == "sk-1"


def test_scheme_is_case_insensitive():
    assert extract_credential(scope([("authorization", "bearer sk-1")])) == "sk-1"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ([], "missing_api_key"),
        ([("authorization", "Bearer ")], "missing_api_key"),
        ([("authorization", "Basic dXNlcjpwYXNz")], "invalid_api_key"),
        ([("authorization", "sk-no-scheme")], "invalid_api_key"),
        ([("x-api-key", "sk\x01ctl")], "invalid_api_key"),
        ([("x-api-key", "k" * 9000)], "invalid_api_key"),
    ],
)
def test_missing_or_malformed_is_401(headers, reason):
    with pytest.raises(AuthenticationFailed) as info:
        extract_credential(scope(headers))
    # On the wire every 401 is `invalid_api_key` (the contract; OpenAI's SDKs match on it):
    # the finer reason travels on the exception, for the audit log.
    assert (info.value.status, info.value.code, info.value.reason) == (401, "invalid_api_key", reason)


@pytest.mark.parametrize("query", [b"api_key=sk-1", b"key=sk-1", b"x=1&access_token=t"])
def test_key_in_query_string_is_refused_even_with_a_header(query):
    with pytest.raises(AuthenticationFailed):
        extract_credential(scope([("x-api-key", "sk-1")], query))


def test_duplicate_or_conflicting_credentials_are_400():
    with pytest.raises(InvalidRequest):
        extract_credential(scope([("authorization", "Bearer a"), ("authorization", "Bearer b")]))
    with pytest.raises(InvalidRequest):
        extract_credential(scope([("authorization", "Bearer a"), ("x-api-key", "b")]))
    # the same key twice in two headers is fine
    assert extract_credential(scope([("authorization", "Bearer a"), ("x-api-key", "a")])) == "a"
