"""Upstream faults the router and ProviderApp must absorb (THREATS U2, U4, U6, U11, U12).

In process (the full stack over ASGITransport) against real fake upstreams, with the fault
proxy where the fault is below HTTP (a connect that never completes).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from asgi_llm import Config, build_app
from asgi_llm.routing.middleware import RouterMiddleware
from tests.conftest import assert_error_shape
from tests.fakes.faultproxy import FaultProxy
from tests.fakes.upstream import Behavior, FakeUpstream

USER = [{"role": "user", "content": "hi"}]
COOLDOWN_CAP_S = 60.0  # routing.cooldown.max_seconds in these tests
POLICY_COOLDOWN_S = 7.0  # routing.cooldown.seconds: what a failure without a usable Retry-After costs
MARGIN_S = 0.5  # scheduling slack on a shared 2-core box


@pytest.fixture(scope="module")
def ups():
    with FakeUpstream("m-a") as a, FakeUpstream("m-b") as b:
        yield a, b


@pytest.fixture(autouse=True)
def fresh(ups):
    for up in ups:
        up.reset()
        up.default = Behavior()


def dep(up, name, **extra):
    return {
        "id": name,
        "provider": "openai-compatible",
        "model": "m",
        "base_url": up.base_url,
        "api_key": "sk-upstream-secret-0",
        **extra,
    }


def calls(up) -> int:
    return sum(1 for r in up.requests if r.method == "POST")


def find(app, kind):
    layer = app
    while not isinstance(layer, kind):
        layer = layer.app
    return layer


async def chat(client, model="m", **extra):
    return await client.post("/v1/chat/completions", json={"model": model, "messages": USER, **extra})


def http_date(seconds_from_now: float) -> str:
    return format_datetime(datetime.now(UTC) + timedelta(seconds=seconds_from_now), usegmt=True)


# -- U2: 429 and its Retry-After ------------------------------------------------------------

ROUTING_429 = {
    "retries": 1,
    "cooldown": {"failures": 1, "seconds": POLICY_COOLDOWN_S, "max_seconds": COOLDOWN_CAP_S},
}

# (Retry-After as sent, the cooldown expected in seconds (low, high), the Retry-After a client
# gets when no deployment is left)
RETRY_AFTERS = {
    "seconds": ("2", (1.5, 2.0), 2),
    "http-date": (None, (28.0, 31.0), (29, 31)),  # 30 s from now, 1 s resolution
    "http-date-past-the-cap": ("+1d", (COOLDOWN_CAP_S - 0.5, COOLDOWN_CAP_S), int(COOLDOWN_CAP_S)),
    "garbage": ("soon, probably", (POLICY_COOLDOWN_S - 0.5, POLICY_COOLDOWN_S), 1),
    "1e9": ("1e9", (COOLDOWN_CAP_S - 0.5, COOLDOWN_CAP_S), int(COOLDOWN_CAP_S)),
}


def retry_after_header(kind: str) -> str:
    raw = RETRY_AFTERS[kind][0]
    if kind == "http-date":
        return http_date(30)
    if raw == "+1d":
        return http_date(86400)
    assert raw is not None
    return raw


@pytest.mark.parametrize("kind", list(RETRY_AFTERS))
async def test_429_cools_the_deployment_for_its_capped_retry_after_and_fails_over(asgi_client, ups, kind):
    a, b = ups
    a.script(Behavior(status=429, headers={"retry-after": retry_after_header(kind)}))
    app = build_app(
        Config.from_dict(
            {"models": [{"name": "m", "deployments": [dep(a, "a"), dep(b, "b")]}], "routing": ROUTING_429}
        )
    )
    client = asgi_client(app=app)
    response = await chat(client)
    assert response.status_code == 200, response.text
    assert response.headers["x-llm-deployment"] == "b"
    assert response.headers["x-llm-attempts"] == "2"

    router = find(app, RouterMiddleware)
    low, high = RETRY_AFTERS[kind][1]
    remaining = router.cooldowns._health["a"].cooling_until - time.monotonic()
    assert low <= remaining <= high, (kind, remaining)

    # While it cools, "a" is not asked at all.
    again = await chat(client)
    assert again.headers["x-llm-deployment"] == "b" and again.headers["x-llm-attempts"] == "1"
    assert calls(a) == 1 and calls(b) == 2


@pytest.mark.parametrize("kind", list(RETRY_AFTERS))
async def test_429_everywhere_is_passed_on_with_a_capped_integer_retry_after(asgi_client, ups, kind):
    a, b = ups
    for up in ups:
        up.default = Behavior(status=429, headers={"retry-after": retry_after_header(kind)})
    client = asgi_client(
        {"models": [{"name": "m", "deployments": [dep(a, "a"), dep(b, "b")]}], "routing": ROUTING_429}
    )
    started = time.monotonic()
    response = await chat(client)
    assert time.monotonic() - started < 1.0  # no Retry-After is slept through here
    assert_error_shape(response, 429)
    value = response.headers["retry-after"]
    assert value.isdigit(), value
    expected = RETRY_AFTERS[kind][2]
    low, high = expected if isinstance(expected, tuple) else (expected, expected)
    assert low <= int(value) <= high, (kind, value)
    assert 1 <= int(value) <= COOLDOWN_CAP_S
    assert calls(a) == 1 and calls(b) == 1  # failed over, then nothing left


# -- U4: connect timeout ------------------------------------------------------------------------

CONNECT_TIMEOUT_S = 0.3


@pytest.fixture
def stalled(ups):
    """A fault proxy in front of upstream "a" whose connects never complete."""
    a, _ = ups
    with FaultProxy(("127.0.0.1", int(a.root_url.rsplit(":", 1)[1]))) as proxy:
        proxy.stall()
        yield {
            "id": "stalled",
            "provider": "openai-compatible",
            "model": "m",
            "base_url": f"http://127.0.0.1:{proxy.port}/v1",
            "api_key": "sk-upstream-secret-0",
            "connect_timeout_s": CONNECT_TIMEOUT_S,
            "first_byte_timeout_s": 10,
        }


async def test_connect_timeout_fails_over_within_the_connect_timeout(asgi_client, ups, stalled):
    a, b = ups
    client = asgi_client({"models": [{"name": "m", "deployments": [stalled, dep(b, "b")]}]})
    started = time.monotonic()
    response = await chat(client)
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert response.headers["x-llm-deployment"] == "b"
    assert response.headers["x-llm-attempts"] == "2"
    assert CONNECT_TIMEOUT_S - 0.05 <= elapsed < CONNECT_TIMEOUT_S + MARGIN_S, elapsed
    assert calls(a) == 0  # nothing ever got through the stalled handshake


async def test_connect_timeout_everywhere_is_a_504_within_the_connect_timeout(asgi_client, stalled):
    client = asgi_client({"models": [{"name": "m", "deployments": [stalled]}], "routing": {"retries": 0}})
    started = time.monotonic()
    response = await chat(client, stream=True)
    elapsed = time.monotonic() - started
    error = assert_error_shape(response, 504, "connect_timeout")
    assert "127.0.0.1" not in error["message"]
    assert CONNECT_TIMEOUT_S - 0.05 <= elapsed < CONNECT_TIMEOUT_S + MARGIN_S, elapsed


# -- U6: stream timeouts end in words, and the upstream is let go --------------------------------


@pytest.mark.parametrize(
    ("limits", "behavior", "cap_s"),
    [
        # total cap: a chunk every 0.1 s (never idle) for 10 s, cut at timeout_s = 1 s
        (
            {"timeout_s": 1.0, "first_byte_timeout_s": 0.5, "idle_timeout_s": 0.5},
            Behavior(chunks=100, chunk_delay_s=0.1),
            1.0,
        ),
        # idle: a chunk every 0.6 s, the idle limit is 0.3 s (the first byte may take 2 s)
        (
            {"timeout_s": 30, "first_byte_timeout_s": 2, "idle_timeout_s": 0.3},
            Behavior(chunks=10, chunk_delay_s=0.6),
            0.6 + 0.3,
        ),
    ],
    ids=["total-cap", "idle"],
)
async def test_stream_timeouts_end_with_an_error_event_and_close_the_upstream(
    asgi_client, ups, limits, behavior, cap_s
):
    a, _ = ups
    a.default = behavior
    client = asgi_client({"models": [{"name": "m", "deployments": [dep(a, "a", **limits)]}]})
    started = time.monotonic()
    response = await chat(client, stream=True)
    ended = time.monotonic()
    text = response.text
    assert response.status_code == 200
    assert "tok0" in text
    assert text.rstrip().endswith('"code":"stream_timeout"}}')
    assert "[DONE]" not in text
    assert cap_s - 0.05 <= ended - started < cap_s + MARGIN_S, ended - started
    gone = await a.wait_for_disconnect_async(timeout=2.0)
    assert gone is not None, "the upstream stream was left open"
    assert gone.disconnected_at - ended < 1.0


# -- U11: upstream 4xx ------------------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 422])
async def test_upstream_4xx_is_passed_on_without_retry_or_failover(asgi_client, ups, status):
    a, b = ups
    a.default = Behavior(status=status, error_message=f"upstream says {status}")
    client = asgi_client(
        {"models": [{"name": "m", "deployments": [dep(a, "a"), dep(b, "b")]}], "routing": {"retries": 2}}
    )
    response = await chat(client)
    error = assert_error_shape(response, status)
    assert error["message"] == f"upstream says {status}"
    assert calls(a) == 1 and calls(b) == 0


async def test_upstream_408_is_retried_elsewhere(asgi_client, ups):
    a, b = ups
    a.default = Behavior(status=408)
    client = asgi_client(
        {"models": [{"name": "m", "deployments": [dep(a, "a"), dep(b, "b")]}], "routing": {"retries": 2}}
    )
    response = await chat(client)
    assert response.status_code == 200
    assert response.headers["x-llm-deployment"] == "b"
    assert response.headers["x-llm-attempts"] == "2"
    assert calls(a) == 1 and calls(b) == 1


async def test_upstream_408_everywhere_is_retried_then_passed_on(asgi_client, ups):
    a, _ = ups
    a.default = Behavior(status=408)
    client = asgi_client({"models": [{"name": "m", "deployments": [dep(a, "a")]}], "routing": {"retries": 2}})
    response = await chat(client)
    assert_error_shape(response, 502, "upstream_unavailable")
    assert calls(a) == 3  # 1 + retries


# -- U12: an oversized upstream body ------------------------------------------------------------


def padded_completion(size: int) -> bytes:
    head = (
        b'{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,'
        b'"message":{"role":"assistant","content":"'
    )
    return head + b"a" * size + b'"},"finish_reason":"stop"}]}'


async def test_an_oversized_success_body_is_a_502(asgi_client, ups):
    a, _ = ups
    a.default = Behavior(body=padded_completion(2 * 1024 * 1024))
    client = asgi_client(
        {
            "models": [{"name": "m", "deployments": [dep(a, "a")]}],
            "routing": {"retries": 0},
            "server": {"max_response_bytes": 64 * 1024},
        }
    )
    response = await chat(client)
    error = assert_error_shape(response, 502, "bad_upstream_response")
    assert "too large" in error["message"]
    assert "aaaa" not in response.text
    a.default = Behavior(body=padded_completion(32 * 1024))  # under the cap: served
    assert (await chat(client)).status_code == 200


async def test_an_oversized_error_body_is_a_502_and_fails_over(asgi_client, ups):
    a, b = ups
    a.default = Behavior(status=500, body=b'{"error":{"message":"' + b"x" * 200_000 + b'"}}')
    client = asgi_client({"models": [{"name": "m", "deployments": [dep(a, "a")]}], "routing": {"retries": 0}})
    response = await chat(client)
    error = assert_error_shape(response, 502, "bad_upstream_response")
    assert "xxxx" not in error["message"]
    client = asgi_client({"models": [{"name": "m", "deployments": [dep(a, "a"), dep(b, "b")]}]})
    assert (await chat(client)).headers["x-llm-deployment"] == "b"
