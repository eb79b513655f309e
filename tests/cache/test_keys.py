"""Cache keys: every output-affecting field is in the key, the namespace above all."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from asgi_llm.cache.keys import cache_key, namespace_for
from asgi_llm.context import Principal

BASE: dict[str, Any] = {
    "model": "m",
    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    "temperature": 0.2,
    "top_p": 1,
    "max_tokens": 50,
    "n": 1,
    "stop": ["\n"],
    "seed": 1,
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    "tool_choice": "auto",
    "response_format": {"type": "text"},
    "logit_bias": {"42": 1},
    "logprobs": False,
    "top_logprobs": 0,
    "presence_penalty": 0,
    "frequency_penalty": 0,
}
OUTPUT_FIELDS = [k for k in BASE if k != "model"] + [
    "max_completion_tokens",
    "reasoning_effort",
    "parallel_tool_calls",
    "a_future_parameter",
]
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


def digest(
    payload: dict[str, Any], namespace: str = "global", model: str = "m", endpoint: str = "chat"
) -> str:
    return cache_key(namespace, model, endpoint, payload).digest


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(OUTPUT_FIELDS), value=json_values)
def test_changing_any_output_field_changes_the_key(field, value):
    changed = {**BASE, field: value}
    same = changed.get(field) == BASE.get(field) or (value is None and field not in BASE)
    if not same:
        assert digest(changed) != digest(BASE)


@settings(max_examples=100, deadline=None)
@given(index=st.integers(0, 1), text=st.text(max_size=30))
def test_any_message_of_the_conversation_is_in_the_key(index, text):
    messages = [dict(m) for m in BASE["messages"]]
    if messages[index]["content"] == text:
        return
    messages[index]["content"] = text
    assert digest({**BASE, "messages": messages}) != digest(BASE)


def test_namespace_model_and_endpoint_are_in_the_key():
    keys = {
        digest(BASE),
        digest(BASE, namespace="tenant:a"),
        digest(BASE, namespace="tenant:b"),
        digest(BASE, model="other"),
        digest(BASE, endpoint="completions"),
    }
    assert len(keys) == 5


def test_what_does_not_change_the_answer_does_not_change_the_key():
    reordered = dict(reversed(list(BASE.items())))
    assert digest(reordered) == digest(BASE)
    assert digest(
        {**BASE, "stream": True, "stream_options": {"include_usage": True}, "model": "alias", "user": "u-1"}
    ) == digest(BASE)
    assert digest({**BASE, "temperature": 1}) == digest({**BASE, "temperature": 1.0})
    assert digest({**BASE, "seed": None}) == digest({k: v for k, v in BASE.items() if k != "seed"})
    assert digest({**BASE, "logprobs": True}) != digest({**BASE, "logprobs": 1})


def test_namespaces():
    assert namespace_for(None, "tenant") == "global"
    alice = Principal(id="alice", tenant="team-a")
    assert namespace_for(alice, "tenant") == "tenant:team-a"
    assert namespace_for(alice, "key") == "key:api_key:alice"
    assert namespace_for(alice, "global") == "global"
    # no tenant: its own namespace, never the shared one
    assert namespace_for(Principal(id="solo"), "tenant") == "key:api_key:solo"
    assert namespace_for(Principal(id="x", kind="jwt"), "key") != namespace_for(Principal(id="x"), "key")


def test_storage_key_holds_only_hex_digests():
    key = cache_key("tenant:*evil*\r\n", "m", "chat", BASE)
    stored = key.storage_key("pfx")
    assert stored.startswith("pfx:e:") and "*" not in stored and "\r" not in stored
