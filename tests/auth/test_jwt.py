"""JWT against a real JWKS server: the attacks of THREATS J1-J11 (asgi_llm/auth/jwt.py)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import socket
import threading
import time

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from joserfc import jwt

from tests.auth.conftest import auth_config, bearer
from tests.conftest import assert_error_shape

CHAT = {"model": "mini", "messages": [{"role": "user", "content": "hi"}]}


def b64(data) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def hand_signed(header, claims, *, rsa=None, hmac_key=None) -> str:
    """A token signed by hand, for what a careful library refuses to produce."""
    signing_input = f"{b64(header)}.{b64(claims)}".encode()
    if hmac_key is not None:
        signature = hmac.new(hmac_key, signing_input, hashlib.sha256).digest()
    else:
        signature = rsa.private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input.decode()}.{b64(signature)}"


@pytest.fixture
def client(asgi_client, idp):
    return asgi_client(auth_config(idp))


async def call(client, token):
    return await client.post("/v1/chat/completions", json=CHAT, headers=bearer(token))


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
async def test_valid_tokens_pass(client, idp, alg):
    response = await call(client, idp.token(alg))
    assert response.status_code == 200, response.text


async def test_claims_map_to_roles_and_tenant(asgi_client, idp):
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from asgi_llm import AuthMiddleware, Config

    async def who(request):
        p = request.state.llm.principal
        return JSONResponse({"id": p.id, "tenant": p.tenant, "roles": list(p.roles), "kind": p.kind})

    app = Starlette(
        routes=[Route("/v1/chat/completions", who, methods=["POST"])],
        middleware=[Middleware(AuthMiddleware, config=Config.from_dict(auth_config(idp)))],
    )
    client = asgi_client(app=app)
    body = (await call(client, idp.token(roles=["user", "made-up"]))).json()
    assert body == {"id": "jwt:user-1", "tenant": "team-a", "roles": ["user"], "kind": "jwt"}


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
async def test_alg_none_is_refused(client, idp, alg):
    claims = idp.claims()
    token = f"{b64({'alg': alg, 'kid': 'rsa-1'})}.{b64(claims)}."
    assert_error_shape(await call(client, token), 401, "invalid_api_key")


async def test_stripped_signature_is_refused(client, idp):
    head, payload, _ = idp.token().split(".")
    assert_error_shape(await call(client, f"{head}.{payload}."), 401, "invalid_api_key")


async def test_hs256_signed_with_the_public_key_is_refused(client, idp):
    for public in (
        idp.rsa.as_pem(private=False),
        idp.rsa.as_der(private=False),
        json.dumps(idp.rsa.as_dict(private=False)).encode(),
    ):
        token = hand_signed({"alg": "HS256", "kid": "rsa-1"}, idp.claims(), hmac_key=public)
        assert_error_shape(await call(client, token), 401, "invalid_api_key")


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"exp": int(time.time()) - 120}, "expired"),
        ({"nbf": int(time.time()) + 600}, "Invalid token"),
        ({"iat": int(time.time()) + 600}, "Invalid token"),
        ({"exp": None}, "Invalid token"),
        ({"aud": "someone-else"}, "Invalid token"),
        ({"iss": "https://evil.test/"}, "Invalid token"),
        ({"iss": "https://idp.test"}, "Invalid token"),  # prefix/substring of the issuer
        ({"iss": ["https://idp.test/"]}, "Invalid token"),
        ({"sub": None}, "no subject"),
    ],
)
async def test_bad_claims_are_refused(client, idp, claims, message):
    error = assert_error_shape(await call(client, idp.token(**claims)), 401, "invalid_api_key")
    assert message in error["message"]  # the code is the contract's; the message says why


async def test_expiry_leeway_is_small(client, idp):
    assert (await call(client, idp.token(exp=int(time.time()) - 5))).status_code == 200
    assert (await call(client, idp.token(exp=int(time.time()) - 40))).status_code == 401


async def test_key_from_another_issuer_with_a_known_kid_is_refused(client, idp, attacker_key):
    token = jwt.encode({"alg": "RS256", "kid": "rsa-1"}, idp.claims(), attacker_key, algorithms=["RS256"])
    assert_error_shape(await call(client, token), 401, "invalid_api_key")


async def test_unknown_kids_refetch_jwks_at_most_once_per_period(client, idp, attacker_key):
    assert (await call(client, idp.token())).status_code == 200
    fetches = idp.jwks_fetches
    attacker = attacker_key
    statuses = []
    for i in range(100):
        token = jwt.encode(
            {"alg": "RS256", "kid": f"random-{i}"}, idp.claims(), attacker, algorithms=["RS256"]
        )
        statuses.append((await call(client, token)).status_code)
    assert idp.jwks_fetches - fetches <= 1
    # 401 each: a JWT costs no per-address budget (auth/failures.py); the refetch rate is global.
    assert statuses == [401] * 100


async def test_stale_keys_while_the_idp_is_down_are_refetched_at_most_once_per_period(asgi_client, idp):
    """Past jwks_ttl_s with the IdP down, cached keys keep serving and the periodic refresh
    is retried once per jwks_min_refresh_s, not once per request."""
    config = auth_config(idp)
    config["auth"]["jwt"]["jwks_ttl_s"] = 1
    client = asgi_client(config)
    assert (await call(client, idp.token())).status_code == 200
    idp.mode = "down"
    await asyncio.sleep(1.1)  # past jwks_ttl_s: the cached keys are stale now
    fetches = idp.jwks_fetches
    for i in range(10):
        assert (await call(client, idp.token(sub=f"user-{i}"))).status_code == 200
    assert idp.jwks_fetches - fetches == 1


async def test_unknown_kids_of_tokens_meant_for_others_never_refetch(client, idp, attacker_key):
    """A JWKS refetch is spent only on a token that claims our issuer and audience and has not
    expired: a client sending another issuer's tokens cannot use up the allowance that picks
    up a rotated key."""
    assert (await call(client, idp.token())).status_code == 200
    fetches = idp.jwks_fetches
    for claims in ({"iss": "https://other.test/"}, {"aud": "another-api"}, {"exp": int(time.time()) - 600}):
        token = jwt.encode(
            {"alg": "RS256", "kid": "rotated-away"}, idp.claims(**claims), attacker_key, algorithms=["RS256"]
        )
        assert_error_shape(await call(client, token), 401, "invalid_api_key")
    assert idp.jwks_fetches == fetches
    # The allowance is still there for a token that could be ours (the first fetch did not use it).
    header = {"alg": "RS256", "kid": "rotated-in"}
    token = jwt.encode(header, idp.claims(), attacker_key, algorithms=["RS256"])
    assert_error_shape(await call(client, token), 401, "invalid_api_key")
    assert idp.jwks_fetches == fetches + 1


@pytest.mark.parametrize("kid", ["../../dev/null", "' OR 1=1 --", "k" * 10_000])
async def test_hostile_kids(client, idp, kid, attacker_key):
    token = jwt.encode({"alg": "RS256", "kid": kid}, idp.claims(), attacker_key, algorithms=["RS256"])
    assert (await call(client, token)).status_code == 401


async def test_key_urls_and_embedded_keys_in_the_header_are_never_used(client, idp, attacker_key):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    hits = []

    def accept():
        try:
            hits.append(listener.accept())
        except OSError:
            pass

    thread = threading.Thread(target=accept)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/keys"
    header = {
        "alg": "RS256",
        "kid": "evil",
        "jku": url,
        "x5u": url,
        "jwk": attacker_key.as_dict(private=False),
    }
    token = jwt.encode(header, idp.claims(), attacker_key, algorithms=["RS256"])
    assert_error_shape(await call(client, token), 401, "invalid_api_key")
    thread.join()
    listener.close()
    assert hits == []


async def test_oversized_and_deeply_nested_tokens_are_401_not_500(client, idp):
    assert (await call(client, "eyJ" + "a" * 9000 + ".b.c")).status_code == 401
    nested = b64(b'{"alg":' + b"[" * 3000 + b"]" * 3000 + b"}")
    assert (await call(client, f"{nested}.{b64(idp.claims())}.sig")).status_code == 401
    assert (await call(client, "eyJhbGciOi.not-base64!.x")).status_code == 401


async def test_unknown_crit_header_is_refused(client, idp):
    header = {"alg": "RS256", "kid": "rsa-1", "crit": ["exp-magic"], "exp-magic": True}
    token = hand_signed(header, idp.claims(), rsa=idp.rsa)
    assert (await call(client, token)).status_code == 401
    # the same hand-made signature without `crit` passes: the refusal is for `crit` alone
    assert (
        await call(client, hand_signed({"alg": "RS256", "kid": "rsa-1"}, idp.claims(), rsa=idp.rsa))
    ).status_code == 200


async def test_tokens_sharing_a_long_prefix_are_distinct_identities(asgi_client, idp):
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from asgi_llm import AuthMiddleware, Config

    async def who(request):
        return JSONResponse({"id": request.state.llm.principal.id})

    app = Starlette(
        routes=[Route("/v1/chat/completions", who, methods=["POST"])],
        middleware=[Middleware(AuthMiddleware, config=Config.from_dict(auth_config(idp)))],
    )
    client = asgi_client(app=app)
    first, second = idp.token(sub="alice"), idp.token(sub="mallory")
    assert first[:20] == second[:20]
    assert (await call(client, first)).json()["id"] == "jwt:alice"
    assert (await call(client, second)).json()["id"] == "jwt:mallory"


async def test_idp_down_before_any_fetch_is_503_never_allow(client, idp):
    idp.mode = "down"
    assert_error_shape(await call(client, idp.token()), 503, "dependency_unavailable")
    idp.mode = "garbage"
    assert (await call(client, idp.token())).status_code == 503


async def test_idp_down_after_a_fetch_keeps_serving_cached_keys(client, idp):
    assert (await call(client, idp.token())).status_code == 200
    idp.mode = "down"
    assert (await call(client, idp.token(sub="someone-new"))).status_code == 200


async def test_a_valid_token_with_no_role_mapping_is_403(client, idp):
    assert_error_shape(await call(client, idp.token(roles=["unknown-role"])), 403)
    assert_error_shape(await call(client, idp.token(roles=None)), 403)


@pytest.mark.parametrize("org", [None, "", 42])
async def test_a_token_without_its_tenant_claim_is_403(client, idp, org):
    """THREATS J11: `tenant_claim` is configured, so a token without it has no tenant to be
    counted, limited and cached under: refused, never served in a shared tenant-less bucket."""
    assert_error_shape(await call(client, idp.token(org=org)), 403, "tenant_missing")


async def test_jwt_config_needs_issuer_and_audience():
    from asgi_llm import Config, ConfigError

    with pytest.raises(ConfigError, match="issuer"):
        Config.from_dict({"auth": {"jwt": {"jwks_url": "http://127.0.0.1:1/jwks", "audience": "a"}}})
