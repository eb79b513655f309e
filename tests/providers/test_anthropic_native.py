"""Coding agents through the gateway (issue 16), end to end: the official `anthropic` and
`openai` SDKs through a real `asgi-llm serve` to a fake Anthropic that checks what it
receives (signatures, fields, PDFs, cache breakpoints) and reports prompt-cache usage.

Native passthrough (thinking, replayed signatures, cache_control with ttl, PDFs with
citations, server tools, beta headers), count_tokens, thinking for chat clients, and the
accounting: a ten-turn coding-agent session whose every token, kind by kind, and every
micro-dollar agree between the fake, the metrics, the token limit and the budget; streams
cut or left mid-way are charged what was delivered.
"""

from __future__ import annotations

import base64
import copy
import json
import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from asgi_llm.auth.keys import hash_key
from tests.conftest import upstream_model
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.upstream import FakeUpstream
from tests.harness import ProxyServer
from tests.metrics.conftest import value
from tests.waiting import wait_until

SESSION = json.loads((Path(__file__).parent / "fixtures" / "coding_agent_session.json").read_text())
USER_KEY, AGENT_KEY, FAULT_KEY, LISTER_KEY, ADMIN_KEY = (
    "sk-user-key-0001",
    "sk-agent-key-0002",
    "sk-fault-key-0003",
    "sk-lister-key-04",
    "sk-admin-key-0005",
)
TOKEN_LIMIT = 100_000_000
PRICES = {  # USD per million tokens, as Anthropic prices Claude Sonnet
    "input_per_mtok": 3.0,
    "output_per_mtok": 15.0,
    "cache_read_per_mtok": 0.3,
    "cache_write_per_mtok": 3.75,
    "cache_write_1h_per_mtok": 6.0,
}
KIND_PRICE = {
    "input": "input_per_mtok",
    "cache_read": "cache_read_per_mtok",
    "cache_write": "cache_write_per_mtok",
    "cache_write_1h": "cache_write_1h_per_mtok",
    "output": "output_per_mtok",
}
PDF = b"%PDF-1.4\n1 0 obj << /Type /Page >> endobj\ntrailer << >>\n%%EOF\n"
USER = [{"role": "user", "content": "Say hello"}]
THINKING = {"type": "enabled", "budget_tokens": 2048}


def claude(name: str, fake: FakeAnthropic, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "deployments": [
            {
                "id": name,
                "provider": "anthropic",
                "model": "claude-fake-1",
                "base_url": fake.base_url,
                "api_key": "sk-ant-deployment-secret",
                "cost": PRICES,
                **extra,
            }
        ],
    }


@pytest.fixture(scope="module")
def fakes():
    with FakeAnthropic("claude") as fake, FakeUpstream("gpt") as gpt:
        yield fake, gpt


@pytest.fixture(scope="module")
def proxy(fakes, tmp_path_factory):
    fake, gpt = fakes
    keys = [
        {"id": "user", "key_sha256": hash_key(USER_KEY), "roles": ["user"]},
        {"id": "agent", "key_sha256": hash_key(AGENT_KEY), "roles": ["user"]},
        {"id": "fault", "key_sha256": hash_key(FAULT_KEY), "roles": ["user"]},
        {"id": "lister", "key_sha256": hash_key(LISTER_KEY), "roles": ["lister"]},
        {"id": "admin", "key_sha256": hash_key(ADMIN_KEY), "roles": ["admin"]},
    ]
    config = {
        "models": [
            claude("claude", fake),
            claude("claude-agent", fake),
            claude("claude-faults", fake),
            claude("claude-tiny", fake),
            claude("claude-versioned", fake, api_version="2024-01-01"),
            upstream_model("gpt", gpt.base_url),
            {"name": "probe", "deployments": [{"id": "probe", "provider": "mock", "model": "probe"}]},
        ],
        "auth": {
            "api_keys": keys,
            "roles": {
                "user": {"models": ["*"], "endpoints": ["chat", "models"]},
                "lister": {"models": ["*"], "endpoints": ["models"]},
                "admin": {"models": ["*"], "endpoints": ["*"], "admin": True},
            },
        },
        "limits": {
            "rules": [
                {"per": "key", "tokens": f"{TOKEN_LIMIT}/hour"},
                {"per": "model", "model": "claude-tiny", "requests": "1/hour"},
            ],
            "budgets": [{"per": "key", "usd": 1000, "period": "month"}],
        },
        "metrics": {"prometheus": {"path": "/metrics"}},
        "routing": {"retries": 0},
    }
    with ProxyServer(config, tmp_path_factory.mktemp("anthropic-native")) as server:
        yield server


@pytest.fixture(autouse=True)
def clean(fakes):
    fakes[0].reset()
    fakes[1].reset()
    fakes[0].default = Reply()


def sdk(proxy: ProxyServer, key: str = USER_KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=proxy.root_url, api_key=key, max_retries=0, timeout=20)


@pytest.fixture
def claude_sdk(proxy):
    with sdk(proxy) as client:
        yield client


def scrape(proxy: ProxyServer) -> str:
    return httpx2.get(proxy.root_url + "/metrics", timeout=10).text


# -- native passthrough ------------------------------------------------------------------------
def test_thinking_comes_back_signed_and_a_replayed_turn_is_accepted(claude_sdk, fakes):
    fake = fakes[0]
    fake.script(Reply(text="", tool_uses=[("get_time", {"zone": "UTC"})], redacted=True))
    tools = [{"name": "get_time", "description": "Now.", "input_schema": {"type": "object"}}]
    first = claude_sdk.messages.create(
        model="claude", max_tokens=4096, thinking=THINKING, tools=tools, messages=USER
    )
    assert [b.type for b in first.content] == ["thinking", "redacted_thinking", "tool_use"]
    assert first.content[0].signature == fake.sign(first.content[0].thinking)
    sent = fake.requests[-1].json
    assert sent == {
        "model": "claude-fake-1",
        "max_tokens": 4096,
        "thinking": THINKING,
        "tools": tools,
        "messages": USER,
    }
    # The second turn gives the blocks back: the fake accepts only its own signatures.
    turns = [
        *USER,
        {"role": "assistant", "content": first.content},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": first.content[2].id, "content": "12:00"}],
        },
    ]
    second = claude_sdk.messages.create(
        model="claude", max_tokens=4096, thinking=THINKING, tools=tools, messages=turns
    )
    assert second.stop_reason == "end_turn" and second.content[0].type == "thinking"
    replayed = fake.requests[-1].json["messages"][1]["content"]
    assert replayed[0] == {
        "type": "thinking",
        "thinking": first.content[0].thinking,
        "signature": first.content[0].signature,
    }
    assert replayed[1] == {"type": "redacted_thinking", "data": first.content[1].data}
    # A changed signature (or a dropped thinking block) is Anthropic's 400, passed on.
    tampered = copy.deepcopy(turns)
    tampered[1]["content"] = [b.model_dump() for b in first.content]
    tampered[1]["content"][0]["signature"] = "Zm9yZ2Vk"
    with pytest.raises(anthropic.BadRequestError, match="Invalid `signature`"):
        claude_sdk.messages.create(
            model="claude", max_tokens=4096, thinking=THINKING, tools=tools, messages=tampered
        )
    tampered[1]["content"] = tampered[1]["content"][2:]
    with pytest.raises(anthropic.BadRequestError, match="must start with a thinking block"):
        claude_sdk.messages.create(
            model="claude", max_tokens=4096, thinking=THINKING, tools=tools, messages=tampered
        )


def test_a_streamed_answer_is_relayed_as_its_bytes(claude_sdk, fakes, proxy):
    fake = fakes[0]
    fake.default = Reply(text="Streaming with thought.", chunks=4)
    body = {"model": "claude", "max_tokens": 4096, "thinking": THINKING, "stream": True, "messages": USER}
    with httpx2.stream(
        "POST",
        proxy.root_url + "/v1/messages",
        json=body,
        headers={"x-api-key": USER_KEY, "anthropic-version": "2023-06-01"},
        timeout=20,
    ) as response:
        assert response.status_code == 200
        relayed = b"".join(response.iter_bytes())
    assert relayed == fake.streams[-1]  # the fake's events, byte for byte
    with claude_sdk.messages.stream(
        model="claude", max_tokens=4096, thinking=THINKING, messages=USER
    ) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].signature == fake.sign(final.content[0].thinking)
    assert final.usage.input_tokens == fake.usages[-1]["input_tokens"]


def test_cache_control_with_a_one_hour_ttl_is_written_then_read(claude_sdk, fakes):
    fake = fakes[0]
    system = [
        {
            "type": "text",
            "text": "You review code. " * 40,
            "cache_control": {"type": "ephemeral", "ttl": "1h"},
        }
    ]
    first = claude_sdk.messages.create(model="claude", max_tokens=100, system=system, messages=USER)
    assert fake.requests[-1].json["system"] == system
    assert first.usage.cache_creation.ephemeral_1h_input_tokens == 120
    assert first.usage.cache_creation_input_tokens == 120 and first.usage.cache_read_input_tokens == 0
    second = claude_sdk.messages.create(model="claude", max_tokens=100, system=system, messages=USER)
    assert second.usage.cache_read_input_tokens == 120 and second.usage.cache_creation_input_tokens == 0
    assert (first.usage.input_tokens, second.usage.input_tokens) == (2, 2)


def test_a_pdf_with_citations_and_a_server_tool_pass_untouched(claude_sdk, fakes):
    fake = fakes[0]
    document = {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": base64.b64encode(PDF).decode()},
        "title": "Greeting",
        "citations": {"enabled": True},
        "cache_control": {"type": "ephemeral"},
    }
    web_search = {"type": "web_search_20250305", "name": "web_search", "max_uses": 1}
    message = claude_sdk.messages.create(
        model="claude",
        max_tokens=100,
        tools=[web_search],
        messages=[{"role": "user", "content": [document, {"type": "text", "text": "What does it say?"}]}],
    )
    sent = fake.requests[-1].json
    assert sent["messages"][0]["content"][0] == document and sent["tools"] == [web_search]
    kinds = [b.type for b in message.content]
    assert kinds == ["server_tool_use", "web_search_tool_result", "text"]
    citation = message.content[2].citations[0]
    assert (citation.type, citation.document_title, citation.start_page_number) == (
        "page_location",
        "Greeting",
        1,
    )
    with pytest.raises(anthropic.BadRequestError, match="PDF specified was not valid"):  # the fake checks
        broken = {**document, "source": {**document["source"], "data": base64.b64encode(b"nope").decode()}}
        claude_sdk.messages.create(
            model="claude", max_tokens=10, messages=[{"role": "user", "content": [broken]}]
        )


def test_the_clients_beta_and_version_headers_pass_and_its_key_does_not(proxy, fakes):
    fake = fakes[0]
    with sdk(proxy) as client:
        client.beta.messages.create(
            model="claude-versioned",
            max_tokens=10,
            messages=USER,
            betas=["interleaved-thinking-2025-05-14", "context-1m-2025-08-07"],
            extra_headers={"anthropic-version": "2023-06-01"},
        )
    seen = fake.requests[-1].headers
    assert seen["anthropic-beta"] == "interleaved-thinking-2025-05-14,context-1m-2025-08-07"
    assert seen["anthropic-version"] == "2023-06-01"  # the client's: its request is written for it
    assert seen["x-api-key"] == "sk-ant-deployment-secret"
    assert USER_KEY not in json.dumps(seen) and "authorization" not in seen
    openai.OpenAI(base_url=proxy.base_url, api_key=USER_KEY, max_retries=0).chat.completions.create(
        model="claude-versioned", messages=USER
    )
    seen = fake.requests[-1].headers
    assert seen["anthropic-version"] == "2024-01-01" and "anthropic-beta" not in seen  # a chat client


def test_what_only_anthropic_can_read_is_refused_elsewhere_naming_the_field(claude_sdk, fakes):
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude_sdk.messages.create(
            model="gpt",
            max_tokens=10,
            messages=USER,
            tools=[{"type": "web_search_20250305", "name": "web_search"}],
        )
    assert caught.value.body["error"]["param"] == "tools[0].type"
    assert fakes[1].requests == []
    # What chat can say goes to a chat deployment, thinking as reasoning_effort.
    claude_sdk.messages.create(model="gpt", max_tokens=5000, thinking=THINKING, messages=USER)
    assert fakes[1].requests[-1].json["reasoning_effort"] == "low"


# -- count_tokens --------------------------------------------------------------------------------
def test_count_tokens_asks_anthropic_or_says_it_estimates(claude_sdk, fakes, proxy):
    fake = fakes[0]
    request = {"messages": [{"role": "user", "content": "one two three four"}], "system": "five six"}
    counted = claude_sdk.messages.count_tokens(model="claude", **request)
    assert counted.input_tokens == 6
    seen = fake.requests[-1]
    assert (seen.path, seen.json) == ("/v1/messages/count_tokens", {"model": "claude-fake-1", **request})
    raw = claude_sdk.messages.with_raw_response.count_tokens(model="gpt", **request)
    assert raw.headers["x-llm-token-estimate"] == "true"
    assert raw.parse().input_tokens == (len("one two three four") + len("five six")) // 4 + 1
    assert (
        "x-llm-token-estimate"
        not in claude_sdk.messages.with_raw_response.count_tokens(model="claude", **request).headers
    )
    assert fakes[1].requests == []  # nothing to ask a chat deployment


def test_count_tokens_needs_the_chat_grant_and_is_not_charged(proxy, fakes):
    with sdk(proxy, LISTER_KEY) as lister, pytest.raises(anthropic.PermissionDeniedError):
        lister.messages.count_tokens(model="claude", messages=USER)
    with sdk(proxy) as client:
        for _ in range(3):  # claude-tiny takes one request an hour: counting is not one
            client.messages.count_tokens(model="claude-tiny", messages=USER)
        client.messages.create(model="claude-tiny", max_tokens=5, messages=USER)
        with pytest.raises(anthropic.RateLimitError):
            client.messages.create(model="claude-tiny", max_tokens=5, messages=USER)
    assert value(scrape(proxy), "asgi_llm_requests_total", endpoint="count_tokens", model="claude-tiny") >= 3


# -- chat clients served by Anthropic -------------------------------------------------------------
def test_reasoning_effort_thinks_and_the_reasoning_comes_back_to_chat_clients(proxy, fakes):
    fake = fakes[0]
    fake.script(Reply(text="", tool_uses=[("get_time", {})]))
    tools = [{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}]
    with openai.OpenAI(base_url=proxy.base_url, api_key=USER_KEY, max_retries=0, timeout=20) as client:
        first = client.chat.completions.create(
            model="claude", messages=USER, tools=tools, reasoning_effort="low"
        )
        sent = fake.requests[-1].json
        assert (
            sent["thinking"] == {"type": "enabled", "budget_tokens": 2048}
            and sent["max_tokens"] == 4096 + 2048
        )
        reply = first.choices[0].message
        extra = reply.model_extra or {}
        assert extra["reasoning_content"].startswith("Let me think.")
        (block,) = extra["thinking_blocks"]
        assert block["signature"] == fake.sign(block["thinking"])
        # The tool loop: the assistant turn goes back with its signed thinking, as Anthropic wants.
        follow = client.chat.completions.create(
            model="claude",
            tools=tools,
            reasoning_effort="low",
            messages=[
                *USER,
                reply.model_dump(exclude_none=True),
                {"role": "tool", "tool_call_id": reply.tool_calls[0].id, "content": "12:00"},
            ],
        )
        assert follow.choices[0].finish_reason == "stop"
        assert fake.requests[-1].json["messages"][1]["content"][0] == block
        chunks = list(
            client.chat.completions.create(model="claude", messages=USER, reasoning_effort="low", stream=True)
        )
    deltas = [c.choices[0].delta.model_extra or {} for c in chunks if c.choices]
    assert "".join(d.get("reasoning_content", "") for d in deltas).startswith("Let me think.")
    (streamed,) = [b for d in deltas for b in d.get("thinking_blocks", [])]
    assert streamed["signature"] == fake.sign(streamed["thinking"])


def test_a_stream_without_stream_options_still_reports_usage(proxy, fakes):
    fake = fakes[0]
    fake.default = Reply(start_usage_zero=True, output_tokens=11)  # message_start says 0/0
    system = [{"type": "text", "text": "Be brief. " * 30, "cache_control": {"type": "ephemeral"}}]
    before = scrape(proxy)
    with openai.OpenAI(base_url=proxy.base_url, api_key=USER_KEY, max_retries=0, timeout=20) as client:
        chunks = list(
            client.chat.completions.create(
                model="claude-versioned", messages=[{"role": "user", "content": "Hi"}], stream=True
            )
        )
    assert all(c.usage is None for c in chunks)  # the client did not ask for it
    with sdk(proxy) as claude_client:
        with claude_client.messages.stream(
            model="claude-versioned", max_tokens=50, system=system, messages=USER
        ) as stream:
            final = stream.get_final_message()
    assert final.usage.cache_creation_input_tokens == 60 and final.usage.output_tokens == 11
    wanted = sum(
        u["input_tokens"] + u.get("cache_creation_input_tokens", 0) + u.get("cache_read_input_tokens", 0)
        for u in fake.usages
    )

    def grown(name: str) -> float:
        return value(scrape(proxy), name, model="claude-versioned") - value(
            before, name, model="claude-versioned"
        )

    wait_until(
        lambda: grown("asgi_llm_completion_tokens_total") == 22, message="both streams' usage recorded"
    )
    assert grown("asgi_llm_prompt_tokens_total") == wanted
    assert grown("asgi_llm_tokens_total") == wanted + 22


# -- the accounting ---------------------------------------------------------------------------------
def kinds(usage: dict[str, Any]) -> dict[str, int]:
    split = usage.get("cache_creation") or {}
    return {
        "input": usage["input_tokens"],
        "cache_read": usage.get("cache_read_input_tokens", 0),
        "cache_write": split.get("ephemeral_5m_input_tokens", 0),
        "cache_write_1h": split.get("ephemeral_1h_input_tokens", 0),
        "output": usage["output_tokens"],
    }


def micros(usage: dict[str, Any]) -> int:
    """A request's cost in micro-dollars, rounded up as budgets charge it."""
    exact = sum(Fraction(n) * Fraction(str(PRICES[KIND_PRICE[k]])) for k, n in kinds(usage).items())
    return math.ceil(exact)


def breakpoints(turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Claude Code's moving breakpoint: only the last user turn's first block is marked (5
    minutes); a system reminder after it is fresh input."""
    out = copy.deepcopy(turns)
    for turn in out:
        if turn["role"] == "user":
            for block in turn["content"]:
                block.pop("cache_control", None)
    out[-1]["content"][0]["cache_control"] = {"type": "ephemeral"}
    return out


def test_a_coding_agent_session_is_counted_and_priced_exactly(proxy, fakes):
    fake = fakes[0]
    fake.script(
        *(
            Reply(
                thinking_text=t["reply"]["thinking_text"],
                text=t["reply"]["text"],
                tool_uses=[tuple(u) for u in t["reply"]["tool_uses"]],
                output_tokens=t["reply"]["output_tokens"],
                chunks=5,
            )
            for t in SESSION["turns"]
        )
    )
    system = [
        {"type": "text", "text": SESSION["system"], "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    ]
    tools = copy.deepcopy(SESSION["tools"])
    tools[-1]["cache_control"] = {"type": "ephemeral", "ttl": "1h"}
    thinking = {"type": "enabled", "budget_tokens": SESSION["thinking_budget"]}
    before = scrape(proxy)
    turns: list[dict[str, Any]] = []
    seen_usage = []
    with sdk(proxy, AGENT_KEY) as client:
        for turn in SESSION["turns"]:
            if "user" in turn:
                turns.append({"role": "user", "content": [{"type": "text", "text": turn["user"]}]})
            else:
                (call,) = [b for b in turns[-1]["content"] if b.type == "tool_use"]
                result = {"type": "tool_result", "tool_use_id": call.id, "content": turn["tool_result"]}
                turns.append({"role": "user", "content": [result]})
            if "reminder" in turn:
                turns[-1]["content"].append({"type": "text", "text": turn["reminder"]})
            request = {
                "model": "claude-agent",
                "max_tokens": SESSION["max_tokens"],
                "thinking": thinking,
                "system": system,
                "tools": tools,
                "messages": breakpoints(turns),
            }
            if turn["stream"]:
                with client.messages.stream(**request) as stream:
                    message = stream.get_final_message()
            else:
                message = client.messages.create(**request)
            seen_usage.append(message.usage.model_dump(exclude_none=True))
            turns.append({"role": "assistant", "content": message.content})
    assert len(fake.usages) == 10 and message.stop_reason == "end_turn"
    assert [u["input_tokens"] for u in seen_usage] == [u["input_tokens"] for u in fake.usages]
    reported = {kind: sum(kinds(u)[kind] for u in fake.usages) for kind in KIND_PRICE}
    assert all(reported.values()), reported  # every kind Anthropic reports is exercised
    total = sum(reported.values())

    # Metrics: every kind, token by token; the cost to the micro-dollar.
    def grown(name: str, **labels: str) -> float:
        return value(scrape(proxy), name, model="claude-agent", **labels) - value(
            before, name, model="claude-agent", **labels
        )

    wait_until(lambda: grown("asgi_llm_requests_total") == 10, message="ten requests recorded")
    for kind, tokens in reported.items():
        assert grown("asgi_llm_tokens_total", kind=kind) == tokens, kind
    assert grown("asgi_llm_tokens_total", kind="reasoning") == 0  # Anthropic counts it as output
    assert grown("asgi_llm_prompt_tokens_total") == total - reported["output"]
    assert grown("asgi_llm_completion_tokens_total") == reported["output"]
    spent = sum(micros(u) for u in fake.usages)
    exact = sum(
        Fraction(n) * Fraction(str(PRICES[KIND_PRICE[k]])) for u in fake.usages for k, n in kinds(u).items()
    )
    assert grown("asgi_llm_cost_usd_total") == pytest.approx(float(exact) / 1e6, abs=1e-9)

    # The budget: each request charged its cost rounded up to the micro-dollar.
    usage = httpx2.get(
        proxy.root_url + "/admin/usage", headers={"authorization": f"Bearer {ADMIN_KEY}"}, timeout=10
    )
    (budget,) = usage.json()["budgets"]
    (agent,) = [u for u in budget["usage"] if u["id"] == "agent"]
    assert round(agent["spent_usd"] * 1_000_000) == spent

    # The token limit settled on the whole totals: a probe of 2 reserved tokens sees the rest.
    probe = httpx2.post(
        proxy.base_url + "/chat/completions",
        json={"model": "probe", "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {AGENT_KEY}"},
        timeout=10,
    )
    assert int(probe.headers["x-ratelimit-remaining-tokens"]) == TOKEN_LIMIT - total - 2


# -- billing under faults ------------------------------------------------------------------------------
FAULT_TEXT = "one two three four five six"  # six text deltas: events 3 to 8 after start, block, ping


def fault_metrics(proxy: ProxyServer, before: str, name: str) -> float:
    return value(scrape(proxy), name, model="claude-faults") - value(before, name, model="claude-faults")


def remaining_tokens(proxy: ProxyServer) -> int:
    probe = httpx2.post(
        proxy.base_url + "/chat/completions",
        json={"model": "probe", "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {FAULT_KEY}"},
        timeout=10,
    )
    return int(probe.headers["x-ratelimit-remaining-tokens"])


class TokenWindow:
    """What a request charged the fault key's token window, read with probes (each probe's
    own charge measured first, by two probes in a row)."""

    def __init__(self, proxy: ProxyServer) -> None:
        self.proxy = proxy
        first = remaining_tokens(proxy)
        self.last = remaining_tokens(proxy)
        self.probe = first - self.last

    def charged(self) -> int:
        now = remaining_tokens(self.proxy)
        return self.last - now - self.probe


@pytest.mark.parametrize("surface", ["messages", "chat"])
def test_a_stream_cut_after_n_events_is_charged_what_was_delivered(proxy, fakes, surface):
    fake = fakes[0]
    fake.default = Reply(text=FAULT_TEXT, chunks=6, cut_after=6, output_tokens=40)
    window = TokenWindow(proxy)
    before = scrape(proxy)
    if surface == "messages":
        cut = pytest.raises(anthropic.APIStatusError, match="interrupted|ended early")
        with sdk(proxy, FAULT_KEY) as client, cut:
            with client.messages.stream(model="claude-faults", max_tokens=1000, messages=USER) as stream:
                list(stream)
    else:
        with openai.OpenAI(base_url=proxy.base_url, api_key=FAULT_KEY, max_retries=0, timeout=20) as client:
            with pytest.raises(openai.APIError, match="interrupted|ended early"):
                list(
                    client.chat.completions.create(
                        model="claude-faults", max_tokens=1000, messages=USER, stream=True
                    )
                )
    (usage,) = fake.usages
    prompt = usage["input_tokens"]  # what message_start said: exact, not the estimate
    wait_until(
        lambda: fault_metrics(proxy, before, "asgi_llm_requests_total") == 1,
        message="the cut stream recorded",
    )
    assert fault_metrics(proxy, before, "asgi_llm_prompt_tokens_total") == prompt
    assert fault_metrics(proxy, before, "asgi_llm_completion_tokens_total") == 3  # deltas at events 3, 4, 5
    assert window.charged() == prompt + 3  # never 0, never the 1000 reserved


def test_a_client_leaving_after_n_events_is_charged_what_was_delivered(proxy, fakes):
    fake = fakes[0]
    fake.default = Reply(text=FAULT_TEXT, chunks=6, chunk_delay_s=0.4, output_tokens=40)
    window = TokenWindow(proxy)
    before = scrape(proxy)
    body = {"model": "claude-faults", "max_tokens": 1000, "stream": True, "messages": USER}
    deltas = 0
    with httpx2.stream(
        "POST", proxy.root_url + "/v1/messages", json=body, headers={"x-api-key": FAULT_KEY}, timeout=20
    ) as response:
        for line in response.iter_lines():
            deltas += line.startswith("event: content_block_delta")
            if deltas == 2:
                break  # and the connection closes
    assert fake.wait_for_disconnect(10) is not None  # the upstream call was closed too
    (usage,) = fake.usages
    wait_until(
        lambda: fault_metrics(proxy, before, "asgi_llm_requests_total") == 1, message="the request recorded"
    )
    assert fault_metrics(proxy, before, "asgi_llm_prompt_tokens_total") == usage["input_tokens"]
    assert fault_metrics(proxy, before, "asgi_llm_completion_tokens_total") == 2
    assert window.charged() == usage["input_tokens"] + 2


def test_the_delivered_rule_never_charges_zero_for_a_stream_cut_before_its_content(proxy, fakes):
    fake = fakes[0]
    fake.default = Reply(text=FAULT_TEXT, chunks=6, cut_after=4)  # message_start, block, ping, one delta
    before = scrape(proxy)
    with sdk(proxy, FAULT_KEY) as client, pytest.raises(anthropic.APIStatusError):
        with client.messages.stream(model="claude-faults", max_tokens=1000, messages=USER) as stream:
            list(stream)
    wait_until(lambda: fault_metrics(proxy, before, "asgi_llm_requests_total") == 1, message="recorded")
    assert fault_metrics(proxy, before, "asgi_llm_prompt_tokens_total") == fake.usages[0]["input_tokens"] > 0
    assert fault_metrics(proxy, before, "asgi_llm_completion_tokens_total") == 1
