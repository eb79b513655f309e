"""Which hosts a deployment may not name: cloud metadata endpoints, by name or address."""

from __future__ import annotations

import ipaddress
import socket

METADATA_NAMES = frozenset(
    {"metadata", "metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal"}
)
_METADATA_V6 = (ipaddress.ip_network("fd00:ec2::/32"),)  # AWS IMDS over IPv6 (fd00:ec2::254)


def host_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a URL host denotes, legacy IPv4 spellings included (`2852039166`,
    `0xA9FEA9FE`, `169.254.43518`: what a resolver would connect to); None for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefxABCDEFX." for c in host) and host[0].isdigit():
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 transition form carries (mapped, 6to4, Teredo, NAT64)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in ipaddress.ip_network("64:ff9b::/96"):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_metadata_host(host: str) -> bool:
    """A link-local address in any spelling, or a well-known cloud metadata name."""
    if host.lower().rstrip(".") in METADATA_NAMES:
        return True
    address = host_address(host)
    if address is None:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        if any(address in net for net in _METADATA_V6):
            return True
        address = _embedded_v4(address) or address
    return address.is_link_local
