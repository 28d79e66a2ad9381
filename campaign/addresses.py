"""Which addresses count as Internet hosts we may import, probe and write about.

Plain Python, no Django: the feed parsers, the probes and the outbound-network guard all ask
the same question here. The decision follows the `ipaddress` module's notions (is_global and
none of private/reserved/loopback/multicast/link-local/unspecified); the fast path only avoids
building an `ipaddress` object for the common case of an ordinary public IPv4 address.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# First octets under which some IPv4 address is special-purpose in Python's tables
# (0/8, 10/8, 100.64/10, 127/8, 169.254/16, 172.16/12, 192.0.0/24, 192.0.2/24, 192.88.99/24,
# 192.168/16, 198.18/15, 198.51.100/24, 203.0.113/24, 224/4, 240/4). Addresses under any
# other first octet are public; tests check this agrees with `ipaddress` everywhere.
_SLOW_FIRST_OCTETS = frozenset({0, 10, 100, 127, 169, 172, 192, 198, 203, *range(224, 256)})

_NAMED_RANGES: list[tuple[IPNetwork, str, str]] = [
    (ipaddress.ip_network(net), code, text)
    for net, code, text in [
        ("100.64.0.0/10", "shared", "shared address space 100.64.0.0/10 (CGNAT, RFC 6598)"),
        ("192.0.2.0/24", "documentation", "documentation range (RFC 5737), not routable"),
        ("198.51.100.0/24", "documentation", "documentation range (RFC 5737), not routable"),
        ("203.0.113.0/24", "documentation", "documentation range (RFC 5737), not routable"),
        ("2001:db8::/32", "documentation", "documentation range (RFC 3849), not routable"),
        ("3fff::/20", "documentation", "documentation range (RFC 9637), not routable"),
        ("10.0.0.0/8", "private", "private range (RFC 1918)"),
        ("172.16.0.0/12", "private", "private range (RFC 1918)"),
        ("192.168.0.0/16", "private", "private range (RFC 1918)"),
        ("fc00::/7", "private", "unique local range (RFC 4193)"),
        ("198.18.0.0/15", "benchmarking", "benchmarking range (RFC 2544)"),
    ]
]


class AddressRejected(ValueError):
    """Raised with a machine code and a sentence a person understands."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def special_purpose_reason(ip: IPAddress) -> tuple[str, str] | None:
    """(code, message) if `ip` is not an ordinary public unicast address, else None."""
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return ("mapped", "IPv4-mapped IPv6 address; list the IPv4 address itself")
    if ip.is_unspecified:
        return ("unspecified", "unspecified address")
    if ip.is_loopback:
        return ("loopback", "loopback address")
    if ip.is_link_local:
        return ("link_local", "link-local address")
    if ip.is_multicast:
        return ("multicast", "multicast address")
    for net, code, text in _NAMED_RANGES:
        if ip.version == net.version and ip in net:
            return (code, text)
    if ip.is_private or ip.is_reserved or not ip.is_global:
        return ("reserved", "reserved / special-purpose range (IANA registry), not routable")
    return None


class AddressPolicy:
    """Decides whether an address may be imported or contacted.

    `allowed_networks` are labs and tests (PROBE_ALLOWED_NETWORKS): addresses inside them
    are accepted although special-purpose.
    """

    def __init__(self, allowed_networks: Iterable[str] = ()) -> None:
        self.allowed: list[IPNetwork] = [
            ipaddress.ip_network(net.strip(), strict=False) for net in allowed_networks
        ]

    def is_allowlisted(self, ip: IPAddress) -> bool:
        return any(ip.version == net.version and ip in net for net in self.allowed)

    def check(self, ip: IPAddress) -> None:
        reason = special_purpose_reason(ip)
        if reason is not None and not self.is_allowlisted(ip):
            raise AddressRejected(*reason)

    def check_text(self, text: str) -> str:
        """Parse and check one address; returns its canonical text.

        Raises AddressRejected("invalid", …) for anything `ipaddress` would not accept
        (leading zeros, octets over 255, garbage).
        """
        if not self.allowed and "." in text and ":" not in text:
            try:
                packed = socket.inet_pton(socket.AF_INET, text)
            except (OSError, ValueError):  # ValueError: embedded NUL
                raise AddressRejected("invalid", "not an IP address") from None
            if packed[0] not in _SLOW_FIRST_OCTETS:
                return text  # inet_pton accepted it, so it is already canonical
        ip = parse_ip(text)
        self.check(ip)
        return str(ip)


def parse_ip(text: str) -> IPAddress:
    if "%" in text:
        raise AddressRejected("invalid", "scoped IPv6 address (zone index) is not a host")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise AddressRejected("invalid", "not an IP address") from None


def network_reason(net: IPNetwork) -> tuple[str, str] | None:
    """Why a listed network cannot be taken as is, if it overlaps special-purpose space."""
    if net.num_addresses == 1:
        return special_purpose_reason(net.network_address)
    for probe in (net.network_address, net.broadcast_address):
        reason = special_purpose_reason(probe)
        if reason:
            return (reason[0], f"covers non-public space ({reason[1]})")
    for special, _code, text in _NAMED_RANGES:
        if special.version == net.version and net.overlaps(special):
            return ("reserved", f"covers non-public space ({special}: {text})")
    return None
