"""What a request is charged (asgi_llm/accounting.py): token kinds, their prices, and the
delivered rule for streams that end before their usage is said."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asgi_llm.accounting import charged_usage, delivered_usage, request_cost, usage_cost
from asgi_llm.config.schema import Cost
from asgi_llm.context import TOKEN_KINDS, LLMContext, Usage
from asgi_llm.providers.base import usage_from
from asgi_llm.providers.native_messages import usage_from_anthropic
from tests.conftest import mock_model

ANTHROPIC = {
    "input_tokens": 40,
    "cache_read_input_tokens": 1000,
    "cache_creation_input_tokens": 300,
    "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200},
    "output_tokens": 50,
}


def test_anthropic_usage_counts_reads_and_writes_in_the_prompt():
    usage = usage_from_anthropic(ANTHROPIC)
    assert usage == Usage(1340, 50, 1000, 0, 300, 200)
    assert dict(usage.kinds()) == {
        "input": 40,
        "cache_read": 1000,
        "cache_write": 100,
        "cache_write_1h": 200,
        "output": 50,
        "reasoning": 0,
    }
    assert tuple(kind for kind, _ in usage.kinds()) == TOKEN_KINDS


def test_a_write_total_without_its_split_is_five_minutes_and_a_split_without_a_total_counts():
    total_only = usage_from_anthropic(
        {"input_tokens": 1, "cache_creation_input_tokens": 9, "output_tokens": 2}
    )
    assert dict(total_only.kinds())["cache_write"] == 9 and total_only.prompt_tokens == 10
    split_only = usage_from_anthropic(
        {"input_tokens": 1, "cache_creation": {"ephemeral_1h_input_tokens": 4}, "output_tokens": 2}
    )
    assert dict(split_only.kinds())["cache_write_1h"] == 4 and split_only.prompt_tokens == 5


def test_openai_usage_keeps_cached_and_reasoning_inside_the_totals():
    chat = usage_from(
        {
            "usage": {
                "prompt_tokens": 120,
                "completion_tokens": 30,
                "prompt_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 5},
                "completion_tokens_details": {"reasoning_tokens": 20},
            }
        }
    )
    assert chat == Usage(120, 30, 100, 20, 5)
    assert dict(chat.kinds()) == {
        "input": 15,
        "cache_read": 100,
        "cache_write": 5,
        "cache_write_1h": 0,
        "output": 10,
        "reasoning": 20,
    }
    responses = usage_from(
        {
            "usage": {
                "input_tokens": 50,
                "output_tokens": 9,
                "input_tokens_details": {"cached_tokens": 40},
                "output_tokens_details": {"reasoning_tokens": 4},
            }
        }
    )
    assert responses == Usage(50, 9, 40, 4)


@given(*(st.integers(0, 10**7) for _ in range(6)))
def test_the_kinds_always_add_up_to_the_total(prompt, completion, read, reasoning, write, hour):
    usage = Usage(prompt, completion, read, reasoning, write, hour)
    kinds = usage.kinds()
    assert all(tokens >= 0 for _, tokens in kinds)
    if read + write <= prompt:  # what every reader above makes sure of
        assert sum(tokens for _, tokens in kinds) == usage.total_tokens


def test_each_kind_has_its_price_and_unset_prices_fall_back():
    usage = usage_from_anthropic(ANTHROPIC)
    claude = Cost(
        input_per_mtok=3.0,
        output_per_mtok=15.0,
        cache_read_per_mtok=0.3,
        cache_write_per_mtok=3.75,
        cache_write_1h_per_mtok=6.0,
    )
    expected = (40 * 3.0 + 1000 * 0.3 + 100 * 3.75 + 200 * 6.0 + 50 * 15.0) / 1e6
    assert usage_cost(usage, claude) == pytest.approx(expected, abs=1e-12)
    plain = Cost(input_per_mtok=2.0, output_per_mtok=8.0)  # the old two-price table: unchanged
    assert usage_cost(usage, plain) == pytest.approx((1340 * 2.0 + 50 * 8.0) / 1e6, abs=1e-12)
    writes = Cost(input_per_mtok=1.0, cache_write_per_mtok=5.0)  # 1 h writes at the write price
    assert usage_cost(Usage(10, 0, 0, 0, 10, 4), writes) == pytest.approx(50 / 1e6, abs=1e-12)
    reasoning = Cost(output_per_mtok=10.0, reasoning_per_mtok=20.0)
    assert usage_cost(Usage(0, 30, 0, 20), reasoning) == pytest.approx((10 * 10 + 20 * 20) / 1e6, abs=1e-12)
    assert usage_cost(None, claude) is None


def context(config, **fields) -> LLMContext:
    ctx = LLMContext(request_id="r", config=config, endpoint="chat")
    for name, value in fields.items():
        setattr(ctx, name, value)
    return ctx


@pytest.fixture
def config():
    from asgi_llm import Config

    model = mock_model("m")
    model["deployments"][0]["cost"] = {"input_per_mtok": 1.0, "output_per_mtok": 2.0}
    return Config.from_dict({"models": [model]})


def test_a_cut_stream_is_charged_its_input_and_what_was_delivered(config):
    # Anthropic told its input at message_start: that, and one token per content event.
    started = Usage(500, 1, 400, 0, 50, 0)
    ctx = context(config, stream_start_usage=started, streamed_chunks=7, prompt_tokens_estimate=90)
    assert delivered_usage(ctx) == Usage(500, 7, 400, 0, 50, 0)
    # Nothing said at the start (or 0/0, which is never taken): the proxy's estimate.
    ctx = context(config, stream_start_usage=Usage(0, 0), streamed_chunks=3, prompt_tokens_estimate=90)
    assert delivered_usage(ctx) == Usage(90, 3)


def test_what_is_charged(config):
    deployment = config.catalog.deployments["m-d"]
    assert charged_usage(context(config)) is None  # no answer: nothing
    said = Usage(10, 5)
    assert charged_usage(context(config, usage=said, cache_status="hit")) is None
    assert charged_usage(context(config, usage=said)) is said
    left = context(config, disconnected=True, prompt_tokens_estimate=12, streamed_chunks=2)
    assert charged_usage(left) == Usage(12, 2)
    assert request_cost(context(config, deployment=deployment, usage=said)) == pytest.approx(20 / 1e6)
    assert request_cost(context(config, deployment=deployment, usage=said, cost_usd=1.5)) == 1.5
    assert request_cost(context(config, deployment=deployment, usage=said, cache_status="hit")) == 0.0


def test_an_error_the_proxy_answered_is_charged_nothing(config):
    # Every attempt failed before an answer began: the 502 the proxy sent is no answer, so the
    # ledger (which reads the context after that error went out) charges what the limiter did.
    deployment = config.catalog.deployments["m-d"]
    failed = context(
        config, deployment=deployment, response_started=True, status=502, prompt_tokens_estimate=12
    )
    assert charged_usage(failed) is None
    assert request_cost(failed) == 0.0
    # A stream whose 200 went out and was cut before any content: its input stands.
    cut = context(config, deployment=deployment, response_started=True, status=200, prompt_tokens_estimate=12)
    assert charged_usage(cut) == Usage(12, 0)
