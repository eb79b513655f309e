"""Where a credential may come from: `Authorization: Bearer`, `api-key`, `x-api-key`.

Never from the query string: a key there ends up in every access log on the way.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from asgi_llm.errors import AuthenticationFailed, InvalidRequest
from asgi_llm.types import Scope

MAX_CREDENTIAL_BYTES = 8192
_VISIBLE_ASCII = re.compile(rb"[\x21-\x7e]+")
_HEADERS = (b"authorization", b"api-key", b"x-api-key")
_QUERY_NAMES = frozenset({"api_key", "api-key", "key", "apikey", "access_token", "token"})
# The ledger's query routes filter on a key *id* named `key` (the contract's `?key=`); the
# value is never read as a credential, so there `key` is a filter like any other.
_KEY_FILTER_PATHS = ("/admin/usage", "/admin/requests")
_FILTER_QUERY_NAMES = _QUERY_NAMES - {"key"}


def extract_credential(scope: Scope) -> str:
    query = scope.get("query_string", b"")
    if query:
        refused = _FILTER_QUERY_NAMES if scope.get("path", "").endswith(_KEY_FILTER_PATHS) else _QUERY_NAMES
        names = (name for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True))
        if any(name.lower() in refused for name in names):
            raise AuthenticationFailed("Credentials in the URL are not accepted; send them in a header.")
    found: dict[bytes, list[bytes]] = {}
    for name, value in scope["headers"]:
        if name in _HEADERS:
            found.setdefault(name, []).append(value)
    if not found:
        raise AuthenticationFailed("No API key provided.", reason="missing_api_key")
    if any(len(values) > 1 for values in found.values()):
        raise InvalidRequest("More than one credential header was sent.", code="duplicate_credentials")
    values = set()
    for name, (value,) in found.items():
        if name == b"authorization":
            scheme, _, rest = value.partition(b" ")
            if scheme.lower() != b"bearer":
                raise AuthenticationFailed("The Authorization header must use the bearer scheme.")
            value = rest
        values.add(value.strip())
    if len(values) > 1:
        raise InvalidRequest(
            "Different credentials were sent in different headers.", code="duplicate_credentials"
        )
    (token,) = values
    if not token:
        raise AuthenticationFailed("No API key provided.", reason="missing_api_key")
    if len(token) > MAX_CREDENTIAL_BYTES or not _VISIBLE_ASCII.fullmatch(token):
        raise AuthenticationFailed("Invalid API key.")
    return token.decode("ascii")
