"""The client's address, for every rate limit: the login throttle and the recipient page.

`TRUSTED_PROXIES` (environment, comma-separated addresses or CIDRs) names the reverse
proxies whose X-Forwarded-For is believed. Without it, the address is REMOTE_ADDR and any
X-Forwarded-For is what the client says it is, ignored.

With it, a request whose peer (REMOTE_ADDR) is a trusted proxy is read from the right of its
X-Forwarded-For: each proxy appends the address it received the request from, so the first
entry from the right that is not itself a trusted proxy is the client. Entries to its left
were written by the client and are never used. python-ipware's parser (the core of
django-ipware) reads the entries (ports, brackets, `Forwarded`-style `for=`, IPv4-mapped
IPv6); the walk is ours, because ipware's own trusted-proxy list matches the last entries of
the header without looking at the peer, so a client talking to the app directly could send
`X-Forwarded-For: forged, <proxy>` and be believed.
"""

from __future__ import annotations

import functools
import ipaddress

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from python_ipware.modern.parsers import parse_ip, split_proxy_chain

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=8)
def parse_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """TRUSTED_PROXIES entries as networks; ImproperlyConfigured names a bad one."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"TRUSTED_PROXIES: {entry!r} is not an IP address or CIDR") from exc
    return tuple(networks)


def trusted_networks() -> tuple[Network, ...]:
    """settings.TRUSTED_PROXIES as networks (read per call: tests change the setting)."""
    return parse_networks(tuple(settings.TRUSTED_PROXIES or ()))


def _trusted(address, networks: tuple[Network, ...]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def client_ip(request: HttpRequest) -> str:
    """Who sent `request`, as far as trusted proxies vouch for it ("" if unknown)."""
    peer = parse_ip(request.META.get("REMOTE_ADDR", ""))
    if peer is None:
        return ""
    networks = trusted_networks()
    if not networks or not _trusted(peer, networks):
        return str(peer)
    chain = split_proxy_chain(request.META.get("HTTP_X_FORWARDED_FOR", "")) or []
    client = peer
    for hop in reversed(chain):
        client = hop
        if not _trusted(hop, networks):
            break
    return str(client)
