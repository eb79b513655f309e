"""A fake identity provider: JWKS and RFC 7662 introspection over real HTTP on loopback.

Keys are minted when it starts; it counts fetches and can be switched down or to garbage.
"""

from __future__ import annotations

import json
import threading
import time
from base64 import b64decode
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

ISSUER = "https://idp.test/"
AUDIENCE = "asgi-llm"
CLIENT = ("proxy-client", "proxy-secret")


class FakeIdP:
    def __init__(self) -> None:
        self.rsa = RSAKey.generate_key(2048, parameters={"kid": "rsa-1", "use": "sig"})
        self.ec = ECKey.generate_key("P-256", parameters={"kid": "ec-1", "use": "sig"})
        self.mode = "up"  # up | down (500) | garbage
        self.jwks_fetches = 0
        self.introspections = 0
        self.active_tokens: dict[str, dict[str, Any]] = {}
        self._server: ThreadingHTTPServer | None = None

    # -- tokens ----------------------------------------------------------------------------
    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "user-1",
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "roles": ["user"],
            "org": "team-a",
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, alg: str = "RS256", header: dict[str, Any] | None = None, **claims: Any) -> str:
        key = self.rsa if alg.startswith(("RS", "PS")) else self.ec
        head = {"alg": alg, "kid": key.kid, **(header or {})}
        return jwt.encode(head, self.claims(**claims), key, algorithms=[alg])

    def jwks(self) -> dict[str, Any]:
        return KeySet([self.rsa, self.ec]).as_dict(private=False)

    # -- server ----------------------------------------------------------------------------
    def start(self) -> FakeIdP:
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: Any) -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                if self.path != "/jwks.json":
                    self._reply(404, {"error": "not found"})
                    return
                idp.jwks_fetches += 1
                if idp.mode == "down":
                    self._reply(500, {"error": "down"})
                elif idp.mode == "garbage":
                    self._reply(200, b"<html>not json")
                else:
                    self._reply(200, idp.jwks())

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length", "0"))
                form = parse_qs(self.rfile.read(length).decode())
                if self.path != "/introspect":
                    self._reply(404, {"error": "not found"})
                    return
                idp.introspections += 1
                basic = self.headers.get("authorization", "")
                if not basic.startswith("Basic ") or b64decode(basic[6:]).decode() != ":".join(CLIENT):
                    self._reply(401, {"error": "invalid_client"})
                    return
                if idp.mode != "up":
                    self._reply(503, {"error": "down"})
                    return
                token = form.get("token", [""])[0]
                claims = idp.active_tokens.get(token)
                self._reply(200, {"active": True, **claims} if claims else {"active": False})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeIdP:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
