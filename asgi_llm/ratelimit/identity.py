"""Who a limit counts: the principal (key id, tenant) or, without auth, the client address.

`X-Forwarded-For` is believed only when the socket peer is a configured trusted proxy, and
then walked right to left past the trusted hops: the first untrusted address is the client.
Anything else a client sends (a rotating `X-Forwarded-For`, `X-Real-IP`, `Forwarded`) never
makes a new bucket (THREATS L6).
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import re
from collections.abc import Iterable

from asgi_llm.context import Principal
from asgi_llm.types import Scope

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_PLAIN = re.compile(r"[A-Za-z0-9_.:@\-]{1,96}")
_XFF = b"x-forwarded-for"


def parse_networks(entries: Iterable[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


@functools.lru_cache(maxsize=4096)  # bounded; parsing an address costs more than the lookup
def _address(text: str) -> IPAddress | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[v6]:port"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "v4:port"
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress, networks: tuple[IPNetwork, ...]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def client_address(scope: Scope, trusted: tuple[IPNetwork, ...]) -> str:
    """The client's address as a bucket name; "unknown" when the server gives none."""
    client = scope.get("client")
    peer = _address(str(client[0])) if client else None
    if peer is None:
        return "unknown"
    if not trusted or not _trusted(peer, trusted):
        return str(peer)
    hops: list[str] = []
    for name, value in scope.get("headers", ()):
        if name == _XFF:
            hops.extend(value.decode("latin-1").split(","))
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break  # a trusted proxy wrote garbage: the peer is all we know
        if not _trusted(address, trusted):
            return str(address)
    return str(peer)


def subject(per: str, principal: Principal | None, address: str, model: str | None) -> str | None:
    """The bucket's identity for a rule's `per`; None when the rule does not apply."""
    caller = principal.id if principal is not None else f"ip:{address}"
    if per == "key":
        return caller
    if per == "tenant":
        if principal is None:
            return f"ip:{address}"
        return principal.tenant or principal.id
    if per == "ip":
        return f"ip:{address}"
    if per == "global":
        return "*"
    if model is None:
        return None  # per model: an unknown model is refused further in, never counted
    if per == "model":
        return model
    return f"{caller}|{model}"  # key_model


def key_part(value: str) -> str:
    """A piece of a storage key: plain names as they are, anything else hashed.

    Keys are never built from raw client input (glob or control characters, unbounded
    length: THREATS K5), and the hash keeps distinct names distinct.
    """
    if _PLAIN.fullmatch(value):
        return value
    return "h-" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


__all__ = ["IPNetwork", "client_address", "key_part", "parse_networks", "subject"]
