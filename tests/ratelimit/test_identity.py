"""Who is counted: the principal, or the client address; X-Forwarded-For only via trusted
proxies (THREATS L6)."""

from __future__ import annotations

import asyncio

import pytest

from asgi_llm.context import Principal
from asgi_llm.ratelimit.identity import (
    client_address,
    key_part,
    parse_networks,
    subject,
)
from tests.ratelimit.conftest import chat, limits_config


def scope(peer: str, *xff: str) -> dict:
    return {"client": (peer, 5000), "headers": [(b"x-forwarded-for", v.encode()) for v in xff]}


TRUSTED = parse_networks(["10.0.0.0/8", "::1"])


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        ("203.0.113.7", ("1.2.3.4",), "203.0.113.7"),  # untrusted peer: its header is ignored
        ("10.0.0.2", ("1.2.3.4",), "1.2.3.4"),
        ("10.0.0.2", ("6.6.6.6, 1.2.3.4, 10.0.0.9",), "1.2.3.4"),  # right to left past trusted hops
        ("10.0.0.2", ("6.6.6.6", "1.2.3.4"), "1.2.3.4"),  # repeated headers are one list
        ("10.0.0.2", ("10.0.0.3",), "10.0.0.2"),  # only trusted hops: the peer
        ("10.0.0.2", ("not-an-ip",), "10.0.0.2"),
        ("10.0.0.2", ("[2001:db8::1]:443",), "2001:db8::1"),
        ("::ffff:203.0.113.7", (), "203.0.113.7"),
    ],
)
def test_client_address(peer, xff, expected):
    assert client_address(scope(peer, *xff), TRUSTED) == expected


def test_no_client_in_scope():
    assert client_address({"headers": []}, ()) == "unknown"


def test_subjects_per_rule():
    alice = Principal(id="alice", tenant="team-a")
    assert subject("key", alice, "1.2.3.4", "m") == "alice"
    assert subject("tenant", alice, "1.2.3.4", "m") == "team-a"
    assert subject("tenant", Principal(id="solo"), "1.2.3.4", "m") == "solo"
    assert subject("key", None, "1.2.3.4", "m") == "ip:1.2.3.4"
    assert subject("ip", alice, "1.2.3.4", "m") == "ip:1.2.3.4"
    assert subject("global", alice, "1.2.3.4", "m") == "*"
    assert subject("model", alice, "1.2.3.4", None) is None
    assert subject("key_model", alice, "1.2.3.4", "m") == "alice|m"


def test_key_parts_never_carry_raw_input():
    assert key_part("alice") == "alice"
    for raw in ("*", "a\r\nb", "x" * 500, "' OR 1=1 --", "{tag}"):
        part = key_part(raw)
        assert part.startswith("h-") and len(part) == 34
    assert key_part("a*") != key_part("b*")


async def test_rotating_forwarded_for_from_an_untrusted_peer_makes_no_new_bucket(stack, prefix):
    _, client = stack(
        limits_config("memory://", prefix, rules=[{"per": "ip", "requests": "3/hour"}]),
        client=("203.0.113.7", 4000),
    )
    responses = await asyncio.gather(
        *[
            client.post(
                "/v1/chat/completions",
                json=chat(),
                headers={
                    "x-forwarded-for": f"198.51.100.{i}",
                    "x-real-ip": f"192.0.2.{i}",
                    "forwarded": f"for=192.0.2.{i}",
                },
            )
            for i in range(10)
        ]
    )
    assert sorted(r.status_code for r in responses) == [200] * 3 + [429] * 7


async def test_a_trusted_proxy_passes_the_client_on(stack, prefix):
    _, client = stack(
        limits_config(
            "memory://", prefix, trusted_proxies=["127.0.0.0/8"], rules=[{"per": "ip", "requests": "1/hour"}]
        )
    )
    statuses = []
    for i in (0, 1, 2, 0):
        forwarded = {"x-forwarded-for": f"198.51.100.{i}"}
        response = await client.post("/v1/chat/completions", json=chat(), headers=forwarded)
        statuses.append(response.status_code)
    assert statuses == [200, 200, 200, 429]  # one client each, and the first one's second request
