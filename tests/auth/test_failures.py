"""Failed authentications (asgi_llm/auth/failures.py, THREATS K8): a client address that keeps
failing costs the key store and the introspection endpoint a bounded number of checks, and
never costs anyone at that address a credential that can be verified without them."""

from __future__ import annotations

from typing import Any

import pytest
from joserfc.jwk import ECKey

from asgi_llm import AuthMiddleware, Config, build_app
from tests.auth.conftest import KEYS, auth_config, bearer
from tests.conftest import assert_error_shape

CHAT = {"model": "mini", "messages": [{"role": "user", "content": "hi"}]}
CLAIMS = {"sub": "svc", "roles": "user", "org": "team-a"}


async def call(client: Any, credential: str) -> Any:
    return await client.post("/v1/chat/completions", json=CHAT, headers=bearer(credential))


@pytest.fixture
def rotate(idp):
    """Rotate the IdP's EC signing key: kid ec-2 is published in place of ec-1 (put back after,
    the IdP is shared by the session)."""
    old = idp.ec

    def rotate_now() -> None:
        idp.ec = ECKey.generate_key("P-256", parameters={"kid": "ec-2", "use": "sig"})

    yield rotate_now
    idp.ec = old


def stack_with_clock(config: dict[str, Any]) -> tuple[Any, list[float]]:
    """The full stack, with the auth layer's clock in the test's hands."""
    app = build_app(Config.from_dict(config))
    layer = app
    while not isinstance(layer, AuthMiddleware):
        layer = layer.app
    clock = [1000.0]
    layer._clock = lambda: clock[0]
    return app, clock


async def test_fifty_bad_keys_then_every_kind_of_valid_credential_passes(asgi_client, idp, rotate):
    """The office NAT: neighbours with mistyped keys fail 50 times from one address (the
    default failure_limit is 20); from that address a config key, a new opaque token
    (introspection) and a JWT signed with a key the IdP published meanwhile all pass."""
    client = asgi_client(auth_config(idp))
    assert (await call(client, idp.token())).status_code == 200  # the key set is now cached
    fetches = idp.jwks_fetches
    typos = [f"sk-alice-01234567{c}9" for c in "abcdefghij"]  # ten neighbours, five tries each
    statuses = [(await call(client, typos[i % 10])).status_code for i in range(50)]
    assert statuses == [401] * 50
    assert idp.introspections == 10  # each bad key was checked once; its repeats never again

    idp.active_tokens["opaque-valid-1"] = CLAIMS
    rotate()
    assert (await call(client, KEYS["alice"])).status_code == 200
    assert (await call(client, "opaque-valid-1")).status_code == 200
    assert (await call(client, idp.token("ES256"))).status_code == 200  # kid ec-2: one refetch
    assert idp.jwks_fetches == fetches + 1


async def test_guesses_past_the_budget_get_429_without_a_remote_call(asgi_client, idp, rotate):
    """Distinct guesses from one address: `failure_limit` of them reach the introspection
    endpoint, the rest get 429 without a call. Whatever can be verified without a remote
    check still passes from that address; other addresses are untouched."""
    app, clock = stack_with_clock(auth_config(idp))
    guesser, other = asgi_client(app=app), asgi_client(app=app, peer=("10.9.9.9", 1234))
    idp.active_tokens["opaque-known"] = CLAIMS
    assert (await call(guesser, "opaque-known")).status_code == 200  # checked before the guessing
    assert (await call(guesser, idp.token())).status_code == 200

    statuses = [(await call(guesser, f"sk-guess-{i:03}")).status_code for i in range(50)]
    assert statuses == [401] * 20 + [429] * 30
    assert idp.introspections == 1 + 20
    refused = await call(guesser, "sk-guess-999")
    assert_error_shape(refused, 429, "too_many_auth_failures")
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert_error_shape(await call(guesser, "sk-guess-000"), 401)  # a repeat: known bad, no call

    rotate()
    for credential in (KEYS["alice"], "opaque-known", idp.token(sub="another"), idp.token("ES256")):
        assert (await call(guesser, credential)).status_code == 200
    assert idp.introspections == 21

    # A token only the introspection endpoint can vouch for waits for the window's end at
    # this address (the price of bounding the calls), and is checked at once elsewhere.
    idp.active_tokens["opaque-new-1"] = idp.active_tokens["opaque-new-2"] = CLAIMS
    assert_error_shape(await call(guesser, "opaque-new-1"), 429, "too_many_auth_failures")
    assert (await call(other, "opaque-new-1")).status_code == 200
    clock[0] += 61
    assert (await call(guesser, "opaque-new-2")).status_code == 200
    assert idp.introspections == 23


async def test_a_successful_remote_check_gives_its_charge_back(asgi_client, idp):
    """Only remote checks that fail use up the address's budget: a morning of expired tokens
    followed by fresh ones behind one NAT does not lock the fresh ones out."""
    app, _ = stack_with_clock(auth_config(idp, failure_limit=3))
    client = asgi_client(app=app)
    for i in range(5):
        idp.active_tokens[f"opaque-fresh-{i}"] = CLAIMS
    assert [(await call(client, f"opaque-expired-{i}")).status_code for i in range(2)] == [401, 401]
    assert [(await call(client, f"opaque-fresh-{i}")).status_code for i in range(5)] == [200] * 5
    assert (await call(client, "opaque-expired-2")).status_code == 401  # the third failure
    assert_error_shape(await call(client, "opaque-expired-3"), 429, "too_many_auth_failures")


async def test_failure_limit_zero_turns_the_guards_off(asgi_client, idp):
    client = asgi_client(auth_config(idp, failure_limit=0))
    statuses = [(await call(client, f"sk-guess-{i:03}")).status_code for i in range(30)]
    assert statuses == [401] * 30  # never a 429: every guess was checked
    assert idp.introspections == 30


def test_memory_stays_bounded_whatever_clients_send():
    from asgi_llm.auth.failures import FailedCredentials, RemoteCheckBudget

    failed, budget = FailedCredentials(size=100), RemoteCheckBudget(max_addresses=100)
    for i in range(1000):
        failed.add(f"digest-{i}", "Invalid API key.", "invalid_api_key", until=2000.0)
        budget.charge(f"10.0.{i // 256}.{i % 256}", limit=20, window_s=60, now=1000.0)
    assert len(failed) == 100 and len(budget) == 100
    assert failed.get("digest-999", 1000.0) == ("Invalid API key.", "invalid_api_key")
    assert failed.get("digest-0", 1000.0) is None  # the oldest went first
    assert failed.get("digest-999", 2000.0) is None  # and every entry expires
