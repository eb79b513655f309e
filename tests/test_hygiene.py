"""Request hygiene against a real `asgi-llm serve` (THREATS.md (b) R2, R4, R5, H1, H2, H7,
H10, H11): duplicate keys, override fields and headers, the admin route inventory and path
variants, request smuggling, body caps, huge counts, crafted targets and log injection.

Most requests go over raw sockets, so nothing in between (an HTTP client library) cleans
them up. One server, one fake upstream and one "attacker" listener serve the whole module.
"""

from __future__ import annotations

import gzip
import json
import socket
import time
from typing import Any

import httpx2
import orjson
import pytest

from asgi_llm.auth.keys import hash_key
from asgi_llm.request import ENDPOINTS, MAX_N, MAX_TOKENS, MAX_TOOLS
from tests.conftest import assert_error_shape, upstream_model
from tests.fakes.upstream import Behavior, FakeUpstream
from tests.harness import SERVERS, ProxyServer
from tests.waiting import wait_until

USER_KEY = "sk-hyg-user-0123456789"
ADMIN_KEY = "sk-hyg-admin-0123456789"
CAP = 256 * 1024  # server.max_body_bytes
USER = [{"role": "user", "content": "hi"}]
CHAT = {"model": "allowed", "messages": USER}
ALLOWED_UPSTREAM = "allowed-upstream"  # the deployment's own model name (upstream_model)
FORBIDDEN_UPSTREAM = "forbidden-upstream"


# -- fixtures ------------------------------------------------------------------------------
class Listener:
    """A loopback port nobody should ever connect to; connections queue in the backlog
    (no accept loop needed) and `connections()` counts them."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.setblocking(False)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.count = 0

    def connections(self) -> int:
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return self.count
            conn.close()
            self.count += 1


@pytest.fixture(scope="module")
def upstream():
    with FakeUpstream("hyg") as up:
        yield up


@pytest.fixture(scope="module")
def attacker():
    listener = Listener()
    yield listener
    listener.sock.close()


@pytest.fixture(scope="module")
def audit_path(server, tmp_path_factory):
    # One file per server: the tests read back what their own requests left.
    return tmp_path_factory.mktemp(f"audit-{server}") / "audit.jsonl"


@pytest.fixture(scope="module", params=SERVERS)
def server(request):
    """Each HTTP server `asgi-llm serve` runs: hygiene is mostly its parser's."""
    return request.param


@pytest.fixture(scope="module")
def proxy(server, upstream, audit_path, tmp_path_factory):
    config = {
        "models": [
            upstream_model("allowed", upstream.base_url),
            upstream_model("forbidden", upstream.base_url),
        ],
        "auth": {
            "api_keys": [
                {
                    "id": "hyg-user",
                    "key_sha256": hash_key(USER_KEY),
                    "roles": ["user"],
                    "tenant": "team-user",
                },
                {"id": "hyg-admin", "key_sha256": hash_key(ADMIN_KEY), "roles": ["admin"]},
            ],
            "roles": {
                "user": {"models": ["allowed"], "endpoints": ["chat", "completions", "embeddings", "models"]},
                "admin": {"models": ["*"], "endpoints": ["*"], "admin": True},
            },
            "audit_log": {"path": str(audit_path)},
            "failure_limit": 0,  # many 401s on purpose from one address (K8 is tested elsewhere)
        },
        "server": {"max_body_bytes": CAP},
    }
    with ProxyServer(
        config, tmp_path_factory.mktemp("hygiene"), extra_args=("--log-format", "json"), server=server
    ) as running:
        yield running


@pytest.fixture(autouse=True)
def clean(upstream, attacker):
    upstream.reset()
    upstream.default = Behavior()
    yield
    assert attacker.connections() == 0, "something connected to the attacker's listener"


# -- raw HTTP/1.1 --------------------------------------------------------------------------
AUTH = f"Authorization: Bearer {USER_KEY}\r\n".encode()


def request(
    target: bytes,
    body: bytes = b"",
    *,
    method: bytes = b"POST",
    host: bytes = b"x",
    headers: bytes = AUTH,
    close: bool = True,
    length: bool = True,
) -> bytes:
    head = method + b" " + target + b" HTTP/1.1\r\nHost: " + host + b"\r\n" + headers
    if body or method == b"POST":
        head += b"Content-Type: application/json\r\n"
        if length:
            head += b"Content-Length: %d\r\n" % len(body)
    if close:
        head += b"Connection: close\r\n"
    return head + b"\r\n" + body


def chunked(body: bytes, size: int = 4096) -> bytes:
    parts = [
        b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size]) for i in range(0, len(body), size)
    ]
    return b"".join(parts) + b"0\r\n\r\n"


def chunked_request(body: bytes, size: int = 4096, target: bytes = b"/v1/chat/completions") -> bytes:
    head = request(target, length=False)
    return head[:-2] + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(body, size)


def send_raw(port: int, data: bytes, *, timeout: float = 5.0, half_close: bool = False) -> bytes:
    """Send bytes, read until the server closes (every request here asks it to, or is one
    the server must close on)."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        sock.settimeout(timeout)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                return out
            out += chunk
        raise AssertionError(f"the server did not close the connection: {out[:200]!r}")


def parse(data: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Every response in a byte stream: (status, headers, body), framed by Content-Length."""
    responses = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        assert sep, f"truncated response: {data[:200]!r}"
        lines = head.decode("latin-1").split("\r\n")
        assert lines[0].startswith("HTTP/1.1 "), lines[0]
        status = int(lines[0].split()[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        size = int(headers.get("content-length", "0"))
        responses.append((status, headers, rest[:size]))
        data = rest[size:]
    return responses


def one_response(port: int, data: bytes, **kw: Any) -> tuple[int, dict[str, str], bytes]:
    responses = parse(send_raw(port, data, **kw))
    assert len(responses) == 1, [r[0] for r in responses]
    return responses[0]


def error_code(body: bytes) -> str | None:
    payload = json.loads(body)
    assert set(payload) == {"error"} and {"message", "type", "code"} <= set(payload["error"]), payload
    return payload["error"]["code"]


def chat_body(**extra: Any) -> bytes:
    return orjson.dumps({**CHAT, **extra})


def post(
    proxy: ProxyServer,
    body: Any,
    key: str | None = USER_KEY,
    headers: dict[str, str] | None = None,
    path: str = "/chat/completions",
) -> httpx2.Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    sent = {
        "content-type": "application/json",
        **({"authorization": f"Bearer {key}"} if key else {}),
        **(headers or {}),
    }
    return httpx2.post(proxy.base_url + path, content=content, headers=sent, timeout=10)


def audit_lines(audit_path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in audit_path.read_text().splitlines()]


# -- R2: duplicate keys, model in the query -------------------------------------------------
def test_duplicate_model_keys_forward_only_what_was_authorized(proxy, upstream):
    messages = b'"messages":[{"role":"user","content":"hi"}]'
    # orjson keeps the last duplicate: here the forbidden one, so the request is refused ...
    response = post(proxy, b'{"model":"allowed","model":"forbidden",' + messages + b"}")
    assert_error_shape(response, 403, "model_not_allowed")
    assert upstream.requests == []
    # ... and here the allowed one, which is the only model the upstream ever sees.
    response = post(proxy, b'{"model":"forbidden","model":"allowed",' + messages + b"}")
    assert response.status_code == 200, response.text
    assert response.headers["x-llm-deployment"] == "allowed-0"
    [seen] = upstream.requests
    assert seen.json["model"] == ALLOWED_UPSTREAM
    assert seen.body.count(b'"model"') == 1  # re-serialized from the parsed object
    assert b"forbidden" not in seen.body


def test_model_in_the_query_string_is_ignored(proxy, upstream):
    url = proxy.base_url + "/chat/completions"
    headers = {"authorization": f"Bearer {USER_KEY}"}
    response = httpx2.post(url + "?model=forbidden", json=CHAT, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    [seen] = upstream.requests
    assert seen.json["model"] == ALLOWED_UPSTREAM and seen.query == ""
    # nor does an allowed model in the query authorize a forbidden one in the body
    response = httpx2.post(
        url + "?model=allowed", json={**CHAT, "model": "forbidden"}, headers=headers, timeout=10
    )
    assert_error_shape(response, 403, "model_not_allowed")
    assert len(upstream.requests) == 1


# -- R4: override fields and headers --------------------------------------------------------
@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"fallbacks": ["forbidden"]}, "fallbacks"),
        ({"fallbacks": [{"model": "forbidden"}]}, "fallbacks"),
        ({"api_base": "ATTACKER"}, "api_base"),
        ({"base_url": "ATTACKER"}, "base_url"),
        ({"api_key": "sk-attacker-000000"}, "api_key"),
        ({"extra_body": {"api_base": "ATTACKER"}}, "extra_body.api_base"),
        ({"extra_body": {"a": {"b": [{"c": {"base_url": "ATTACKER"}}]}}}, "extra_body.a.b.0.c.base_url"),
        (
            {"metadata": {"team_id": "team-other", "litellm_params": {"api_base": "ATTACKER"}}},
            "metadata.litellm_params",
        ),
        ({"metadata": {"x": [[[{"azure_endpoint": "ATTACKER"}]]]}}, "metadata.x.0.0.0.azure_endpoint"),
        ({"extra_headers": {"custom_llm_provider": "openai"}}, "extra_headers.custom_llm_provider"),
        (
            {"deep": {"l1": {"l2": {"l3": {"l4": {"l5": {"l6": {"l7": {"api_base": "ATTACKER"}}}}}}}}},
            "deep.l1.l2.l3.l4.l5.l6.l7.api_base",
        ),
    ],
)
def test_override_fields_at_any_depth_are_400(proxy, upstream, attacker, extra, param):
    body = orjson.dumps({**CHAT, **extra}).replace(b"ATTACKER", attacker.url.encode())
    response = post(proxy, body)
    error = assert_error_shape(response, 400, "unsupported_parameter")
    assert error["param"] == param
    assert upstream.requests == []
    assert attacker.connections() == 0


def test_user_and_metadata_team_id_never_become_identity(proxy, upstream, audit_path):
    # `user` names the admin key's id, `metadata.team_id` another tenant: neither is read.
    extra = {"user": "hyg-admin", "metadata": {"team_id": "team-admin", "tenant": "team-admin"}}
    response = post(
        proxy, {**CHAT, "model": "forbidden", **extra}, headers={"x-request-id": "hyg-identity-0"}
    )
    assert_error_shape(response, 403, "model_not_allowed")
    assert upstream.requests == []
    response = post(proxy, {**CHAT, **extra}, headers={"x-request-id": "hyg-identity-1"})
    assert response.status_code == 200, response.text
    [seen] = upstream.requests
    assert seen.json["user"] == "hyg-admin"  # passed through untouched
    assert seen.json["metadata"] == extra["metadata"]
    ids = ("hyg-identity-0", "hyg-identity-1")
    decisions = [line for line in audit_lines(audit_path) if line["request_id"] in ids]
    assert [d["outcome"] for d in decisions] == ["deny", "allow"], decisions
    assert all(d["principal"] == "hyg-user" and d["tenant"] == "team-user" for d in decisions), decisions
    # an admin route stays closed whatever the body says
    response = httpx2.get(proxy.root_url + "/admin/config", headers={"authorization": f"Bearer {USER_KEY}"})
    assert_error_shape(response, 403, "endpoint_not_allowed")


@pytest.mark.parametrize(
    "name",
    [
        "x-api-base",
        "x-portkey-custom-host",
        "api-base",
        "x-base-url",
        "x-forwarded-host",
        "x-portkey-provider",
        "x-litellm-api-base",
    ],
)
def test_override_headers_never_pick_the_host(proxy, upstream, attacker, name):
    response = post(proxy, CHAT, headers={name: attacker.url})
    assert response.status_code == 200, response.text
    [seen] = upstream.requests  # the configured upstream got the call
    assert name not in seen.headers and attacker.url not in str(seen.headers)
    assert attacker.connections() == 0


# -- R5: the admin route inventory, path variants -------------------------------------------
ADMIN_ROUTES = sorted(
    (path, method) for path, (name, method) in ENDPOINTS.items() if name.startswith("admin")
)
ADMIN_BODIES = {
    "/admin/keys": {"id": "minted", "roles": ["admin"]},
    "/admin/keys/revoke": {"id": "hyg-admin"},
}


ROUTE_BODIES = {
    "chat": CHAT,
    "completions": {"model": "allowed", "prompt": "hi"},
    "embeddings": {"model": "allowed", "input": "hi"},
    "messages": {"model": "allowed", "max_tokens": 16, "messages": USER},
    "responses": {"model": "allowed", "input": "hi"},
    "messages.count_tokens": {"model": "allowed", "messages": USER},
    **{ENDPOINTS[path][0]: body for path, body in ADMIN_BODIES.items()},
}


@pytest.mark.parametrize(("path", "endpoint"), sorted((path, spec) for path, spec in ENDPOINTS.items()))
def test_every_route_in_the_inventory_needs_a_key(proxy, upstream, path, endpoint):
    # The table every route is served from (Portkey #1718: a route that skipped the checks).
    name, method = endpoint
    body = ROUTE_BODIES.get(name)
    kwargs: dict[str, Any] = {"json": body} if body is not None else {}
    response = httpx2.request(method, proxy.root_url + path, timeout=10, **kwargs)
    assert_error_shape(response, 401, "invalid_api_key")
    assert upstream.requests == []


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/v1/responses/resp_1", "GET"),
        ("/v1/responses/resp_1", "DELETE"),
        ("/v1/responses/resp_1/input_items", "GET"),
        ("/v1/responses/resp_1/cancel", "POST"),
        ("/v1/models/allowed", "GET"),
        ("/responses/resp_1", "GET"),
    ],
)
def test_every_route_with_an_id_needs_a_key(proxy, upstream, path, method):
    response = httpx2.request(method, proxy.root_url + path, timeout=10)
    assert_error_shape(response, 401, "invalid_api_key")
    assert upstream.requests == []


@pytest.mark.parametrize(("path", "method"), ADMIN_ROUTES)
def test_every_admin_route_is_403_for_a_user_key_and_401_without_one(proxy, path, method):
    body = ADMIN_BODIES.get(path)
    kwargs: dict[str, Any] = {"json": body} if body is not None else {}
    url = proxy.root_url + path
    response = httpx2.request(
        method, url, headers={"authorization": f"Bearer {USER_KEY}"}, timeout=10, **kwargs
    )
    assert_error_shape(response, 403, "endpoint_not_allowed")
    response = httpx2.request(method, url, timeout=10, **kwargs)
    assert_error_shape(response, 401, "invalid_api_key")


def test_the_admin_key_does_reach_the_admin_api(proxy):
    response = httpx2.get(proxy.root_url + "/admin/config", headers={"authorization": f"Bearer {ADMIN_KEY}"})
    assert response.status_code == 200 and "models" in response.json()["config"]


ADMIN_VARIANTS = [
    b"//admin/config",
    b"/admin/config/",
    b"/admin/%2e%2e/admin/config",
    b"/admin/config;x",
    b"/ADMIN/CONFIG",
    b"/v1/../admin/config",
    b"/v1/%2e%2e/admin/config",
    b"/admin//config",
    b"/admin/config%00",
    b"/admin/config%2f",
    b"/%61dmin/config",
    b"/admin/config?x=1",
    b"http://evil/admin/config",
    b"/admin/./config",
]


@pytest.mark.parametrize("target", ADMIN_VARIANTS, ids=[v.decode() for v in ADMIN_VARIANTS])
@pytest.mark.parametrize("host", [b"x", b"a/?x="])
def test_admin_path_variants_never_give_a_user_key_admin_data(proxy, target, host):
    status, _, body = one_response(proxy.port, request(target, method=b"GET", host=host))
    assert status in (403, 404), (status, body[:200])
    code = error_code(body)
    # the variants that decode to the exact route are authorized as that route; the rest match nothing
    assert code == ("endpoint_not_allowed" if status == 403 else "unknown_url")
    assert b"config" not in body and b"sha256" not in body


# -- H1: request smuggling ------------------------------------------------------------------
SMUGGLED = request(b"/v1/chat/completions", orjson.dumps(CHAT), close=False)
HEAD = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n" + AUTH + b"Content-Type: application/json\r\n"
BODY = orjson.dumps(CHAT)
SMUGGLING = {
    "chunk data not followed by CRLF": HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
    "chunk lines ending in a bare LF": HEAD
    + b"Transfer-Encoding: chunked\r\n\r\n%x\n%s\n0\n\n" % (len(BODY), BODY),
    "chunk lines ending in a bare CR": HEAD
    + b"Transfer-Encoding: chunked\r\n\r\n%x\r%s\r0\r\r" % (len(BODY), BODY),
    "bare LF inside a chunk extension": HEAD
    + b'Transfer-Encoding: chunked\r\n\r\n%x;a="b\nc"\r\n%s\r\n0\r\n\r\n' % (len(BODY), BODY),
    "TE xchunked": HEAD + b"Transfer-Encoding: xchunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY),
    "TE chunked twice": HEAD
    + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
    + chunked(BODY),
    "space before the TE colon": HEAD
    + b"Transfer-Encoding : chunked\r\nContent-Length: %d\r\n\r\n" % len(BODY)
    + BODY,
    "CL and TE": HEAD
    + b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n" % len(BODY)
    + chunked(BODY),
    "two different CLs": HEAD + b"Content-Length: %d\r\nContent-Length: 5\r\n\r\n" % len(BODY) + BODY,
    "CL with a sign": HEAD + b"Content-Length: +%d\r\n\r\n" % len(BODY) + BODY,
}


# granian (hyper) answers these differently, never by smuggling: it frames CL+TE and a
# doubled `chunked` by the chunked coding and drops the Content-Length before the app sees
# the headers (RFC 9112 6.1 allows it), so the one request is served once; a malformed chunk
# reaches the app as a disconnect, and granian itself answers 500.
HYPER_FRAMES = {"CL and TE", "TE chunked twice"}
HYPER_500 = {
    "chunk data not followed by CRLF",
    "chunk lines ending in a bare LF",
    "chunk lines ending in a bare CR",
    "bare LF inside a chunk extension",
}


@pytest.mark.parametrize("attack", list(SMUGGLING), ids=list(SMUGGLING))
def test_smuggling_is_refused_and_closes_and_the_upstream_sees_nothing(server, proxy, upstream, attack):
    data = SMUGGLING[attack] + SMUGGLED
    # half_close: a parser waiting for a line end it will never get sees the end of input
    status, headers, _ = one_response(proxy.port, data, half_close=True)
    if server == "granian" and attack in HYPER_FRAMES:
        assert status == 200  # the chunked body, and no second (smuggled) response
        assert [r.json["model"] for r in upstream.requests] == [ALLOWED_UPSTREAM]
        return
    if server == "granian" and attack in HYPER_500:
        assert status == 500 and upstream.requests == []
        return
    assert status in (400, 501), status  # 501: a transfer coding h11 does not know
    assert headers.get("connection") == "close"
    assert upstream.requests == []


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_request_inside_a_body_stays_a_body(proxy, upstream, framing):
    inner = request(b"/v1/chat/completions", BODY, close=False)
    if framing == "chunked":
        data = chunked_request(inner, 40)
    else:
        data = request(b"/v1/chat/completions", inner)
    status, _, body = one_response(proxy.port, data)
    assert status == 400 and error_code(body) == "invalid_json"
    assert upstream.requests == []


def test_pipelined_requests_are_answered_in_order_one_upstream_call_each(proxy, upstream):
    # Not smuggling: two complete requests on one connection; each is framed and authorized.
    first = request(b"/v1/chat/completions", BODY, close=False)
    second = request(b"/v1/chat/completions", orjson.dumps({**CHAT, "model": "forbidden"}))
    responses = parse(send_raw(proxy.port, first + second))
    assert [status for status, _, _ in responses] == [200, 403]
    assert [r.json["model"] for r in upstream.requests] == [ALLOWED_UPSTREAM]


def test_obs_fold_is_refused_or_unfolded_never_a_header_of_its_own(server, proxy, upstream):
    # THREATS H1 asks for a 400: llhttp (uvicorn) and hyper (granian) refuse the fold. h11
    # (hypercorn) takes RFC 9112 5.2's second option: the folded line joins the previous
    # value. Either way the fold cannot frame or smuggle.
    data = (
        HEAD
        + b"X-Note: a\r\n Transfer-Encoding: chunked\r\n\tContent-Length: 5\r\n"
        + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(BODY)
        + BODY
    )
    responses = parse(send_raw(proxy.port, data))
    if server != "hypercorn":
        assert [status for status, _, _ in responses] == [400]
        assert upstream.requests == []
        return
    assert [status for status, _, _ in responses] == [200]  # framed by the real Content-Length
    [seen] = upstream.requests
    assert seen.json["model"] == ALLOWED_UPSTREAM and "x-note" not in seen.headers


# -- H2: body caps, codings, media types ----------------------------------------------------
def padded_body(size: int) -> bytes:
    shell = orjson.dumps({**CHAT, "messages": [{"role": "user", "content": ""}]})
    body = shell.replace(b'"content":""', b'"content":"' + b"x" * (size - len(shell)) + b'"')
    assert len(body) == size
    return body


def test_declared_length_over_the_cap_is_413_before_the_body_is_sent(proxy, upstream):
    head = request(b"/v1/chat/completions", b"", close=False).replace(
        b"Content-Length: 0", b"Content-Length: %d" % (CAP + 1)
    )
    with socket.create_connection(("127.0.0.1", proxy.port)) as sock:
        sock.sendall(head)  # headers only: the answer must not wait for the body
        sock.settimeout(3)
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.endswith(b"}"):
            chunk = sock.recv(4096)
            assert chunk, reply
            reply += chunk
    [(status, _, body)] = parse(reply)
    assert status == 413 and error_code(body) == "request_too_large"
    assert upstream.requests == []


def test_chunked_body_past_the_cap_is_413(proxy, upstream):
    data = chunked_request(padded_body(CAP + 4096))
    status, _, body = one_response(proxy.port, data)
    assert status == 413 and error_code(body) == "request_too_large"
    assert upstream.requests == []


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
@pytest.mark.parametrize(("size", "status"), [(CAP - 1, 200), (CAP, 200), (CAP + 1, 413)])
def test_the_cap_boundary(proxy, upstream, framing, size, status):
    body = padded_body(size)
    if framing == "chunked":
        data = chunked_request(body, 65536)
    else:
        data = request(b"/v1/chat/completions", body)
    got, _, reply = one_response(proxy.port, data)
    assert got == status, reply[:200]
    assert len(upstream.requests) == (1 if status == 200 else 0)
    if status == 413:
        assert error_code(reply) == "request_too_large"


@pytest.mark.parametrize("coding", [b"gzip", b"br", b"deflate", b"identity, gzip", b"GZIP"])
def test_a_coded_body_is_415_and_never_decoded(proxy, upstream, coding):
    bomb = gzip.compress(b" " * 10_000_000)  # ~10 KB that would inflate to 10 MB
    for body in (bomb, BODY):  # a lie (plain JSON said to be gzip) is refused just the same
        data = request(b"/v1/chat/completions", body).replace(
            b"Connection: close\r\n", b"Connection: close\r\nContent-Encoding: " + coding + b"\r\n"
        )
        status, _, reply = one_response(proxy.port, data)
        assert status == 415 and error_code(reply) == "unsupported_media_type"
    assert upstream.requests == []


def test_identity_coding_is_accepted(proxy, upstream):
    data = request(b"/v1/chat/completions", BODY).replace(
        b"Connection: close\r\n", b"Connection: close\r\nContent-Encoding: identity\r\n"
    )
    status, _, _ = one_response(proxy.port, data)
    assert status == 200 and len(upstream.requests) == 1


def test_multipart_with_a_long_boundary_is_415_before_parsing(proxy, upstream):
    boundary = b"-" * 4000 + b"x"
    body = (
        b"--"
        + boundary
        + b"\r\nContent-Disposition: form-data; name=model\r\n\r\nallowed\r\n--"
        + boundary
        + b"--"
    )
    data = request(b"/v1/chat/completions", body).replace(
        b"Content-Type: application/json", b"Content-Type: multipart/form-data; boundary=" + boundary
    )
    status, _, reply = one_response(proxy.port, data)
    assert status == 415 and error_code(reply) == "unsupported_media_type"
    assert upstream.requests == []


# -- H7: huge counts and sizes, refused before any upstream call ----------------------------
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}


@pytest.mark.parametrize(
    ("extra", "status", "code", "param"),
    [
        ({"tools": [TOOL] * 1000}, 400, "param_too_large", "tools"),
        ({"tools": [TOOL] * (MAX_TOOLS + 1)}, 400, "param_too_large", "tools"),
        ({"max_tokens": MAX_TOKENS + 1}, 400, "param_too_large", "max_tokens"),
        ({"max_tokens": 2**64 - 1}, 400, "param_too_large", "max_tokens"),
        ({"max_completion_tokens": MAX_TOKENS + 1}, 400, "param_too_large", "max_completion_tokens"),
        ({"max_tokens": 1e30}, 400, "invalid_type", "max_tokens"),
        ({"n": 1_000_000}, 400, "param_too_large", "n"),
        ({"n": MAX_N + 1}, 400, "param_too_large", "n"),
        ({"n": 2**63}, 400, "param_too_large", "n"),
        ({"model": "m" * 257}, 400, "param_too_large", "model"),
        ({"messages": [{"role": "user", "content": "x" * 10_000_000}]}, 413, "request_too_large", None),
    ],
    ids=[
        "1000 tools",
        "max tools + 1",
        "max_tokens cap + 1",
        "max_tokens 2^64-1",
        "max_completion_tokens cap + 1",
        "max_tokens 1e30",
        "n 1e6",
        "n cap + 1",
        "n 2^63",
        "model 257 chars",
        "10 MB message",
    ],
)
def test_huge_counts_and_sizes_are_refused_before_any_upstream_call(
    proxy, upstream, extra, status, code, param
):
    response = post(proxy, {**CHAT, **extra})
    error = assert_error_shape(response, status, code)
    assert error["param"] == param
    assert upstream.requests == []


# -- H10: crafted Host, absolute-form targets -----------------------------------------------
@pytest.mark.parametrize(
    "target",
    [
        b"/v1/chat/completions",
        b"http://evil/v1/chat/completions",
        b"HTTP://evil:1/v1/chat/completions",
        b"ATTACKER/v1/chat/completions",
    ],
)
@pytest.mark.parametrize("host", [b"a/?x=", b"evil", b"127.0.0.1:1"])
def test_host_and_absolute_form_change_neither_routing_nor_authz(proxy, upstream, attacker, target, host):
    target = target.replace(b"ATTACKER", attacker.url.encode())
    status, _, body = one_response(proxy.port, request(target, BODY, host=host, headers=b""))
    assert status == 401 and error_code(body) == "invalid_api_key"
    request_id = b"hyg-h10-%d" % time.monotonic_ns()
    headers = AUTH + b"X-Request-Id: " + request_id + b"\r\n"
    status, headers, body = one_response(proxy.port, request(target, BODY, host=host, headers=headers))
    assert status == 200, body[:200]
    assert headers["x-llm-deployment"] == "allowed-0"
    [seen] = upstream.requests
    assert seen.path == "/v1/chat/completions"
    assert seen.headers["host"] == upstream.root_url.removeprefix("http://")
    assert attacker.connections() == 0
    # and the access line names the path, never the target's authority (written after the response)
    [line] = wait_until(
        lambda: [line for line in access_lines(proxy) if line["request_id"] == request_id.decode()]
    )
    assert line["path"] == "/v1/chat/completions"


def test_absolute_form_to_an_admin_route_is_still_authorized(proxy):
    status, _, body = one_response(proxy.port, request(b"http://evil/admin/config", method=b"GET"))
    assert status == 403 and error_code(body) == "endpoint_not_allowed"


# -- H11: log injection -----------------------------------------------------------------------
def access_lines(proxy: ProxyServer) -> list[dict[str, Any]]:
    lines = []
    for line in proxy.log().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("logger") == "asgi_llm.access":
                lines.append(record)
    return lines


EVIL = 'INJ\r\n{"level":"error","logger":"asgi_llm.access","path":"/admin"}\x1b[31m"quoted"\x1b[0m\n'


def test_crlf_ansi_and_quotes_never_forge_log_lines(server, proxy, upstream, audit_path):
    ua = b'INJ "quoted" \x1b[31mred\x1b[0m \\r\\n {"level":"error"}'
    if server != "hypercorn":
        # llhttp and hyper refuse a raw control byte in a header value outright; h11 lets
        # it through, and the log must not show it. The fields below go in all the same.
        status, _, _ = one_response(
            proxy.port, request(b"/v1/models", method=b"GET", headers=AUTH + b"User-Agent: " + ua + b"\r\n")
        )
        assert status == 400
        ua = ua.replace(b"\x1b", b"")
    sent = {
        "hyg-h11-model": {**CHAT, "model": EVIL},  # unknown model: 404
        "hyg-h11-user": {**CHAT, "user": EVIL},  # passed upstream: 200
        "hyg-h11-both": {**CHAT, "model": EVIL, "user": EVIL},
    }
    statuses = {}
    for request_id, payload in sent.items():
        headers = f"Authorization: Bearer {USER_KEY}\r\nX-Request-Id: {request_id}\r\nUser-Agent: ".encode()
        status, _, _ = one_response(
            proxy.port,
            request(b"/v1/chat/completions", orjson.dumps(payload), headers=headers + ua + b"\r\n"),
        )
        statuses[request_id] = status
    assert statuses == {"hyg-h11-model": 404, "hyg-h11-user": 200, "hyg-h11-both": 404}
    # a path carrying CR, LF, ESC and quotes (percent-encoded: the request line allows no raw ones)
    status, _, _ = one_response(
        proxy.port, request(b"/v1/INJ%0d%0a%7b%22level%22%3a%22error%22%7d%1b%5b31m", method=b"GET")
    )
    assert status == 404

    def all_four_logged() -> bool:  # an access line is written after its response
        access = access_lines(proxy)
        seen = {line["request_id"] for line in access}
        return set(sent) <= seen and any("INJ" in line["path"] for line in access)

    wait_until(all_four_logged, message="the access lines of the four requests")
    text = proxy.log()
    assert "\x1b" not in text and "\r" not in text
    for line in text.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            assert "INJ" not in line or record["logger"] == "asgi_llm.access", line
        else:  # the start-up banner: never a forged record
            assert "INJ" not in line and '"level"' not in line, line
    access = access_lines(proxy)
    for request_id in sent:
        assert sum(1 for line in access if line["request_id"] == request_id) == 1, request_id
    [forged] = [line for line in access if "INJ" in line["path"]]
    assert forged["status"] == 404 and "\n" not in forged["path"] and "\x1b" not in forged["path"]
    # the audit log is JSON lines too: escapes, no raw control characters
    audit = audit_path.read_text()
    assert "\x1b" not in audit and "\r" not in audit
    assert all(json.loads(line) for line in audit.splitlines())
