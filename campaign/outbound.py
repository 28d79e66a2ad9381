"""The one seam for outbound network I/O: feed URLs, probes, RDAP and WHOIS.

Every connection the product opens goes through here, and here alone decides whether a target
is allowed: public unicast addresses only, unless PROBE_ALLOWED_NETWORKS (labs and tests)
says otherwise. Host names are resolved here and the *checked* address is the one connected
to, so DNS rebinding cannot slip an internal address in between check and connect.
"""

from __future__ import annotations

import asyncio
import socket
from functools import lru_cache
from typing import BinaryIO
from urllib.parse import urljoin, urlsplit

import httpx
from django.conf import settings

from campaign.addresses import AddressPolicy, AddressRejected, IPAddress, parse_ip

USER_AGENT = "SecureYourServer/0.1 (+abuse outreach; contact the operating agency)"


class TargetRefused(AddressRejected):
    """The target is not a public address and is not allowlisted."""


class FetchError(Exception):
    """A URL could not be fetched; `permanent` says whether retrying can help."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


@lru_cache(maxsize=8)
def _policy_for(allowed: tuple[str, ...]) -> AddressPolicy:
    return AddressPolicy(allowed)


def get_policy() -> AddressPolicy:
    return _policy_for(tuple(settings.PROBE_ALLOWED_NETWORKS))


def check_target(ip_text: str) -> IPAddress:
    ip = parse_ip(ip_text)
    policy = get_policy()
    if settings.PROBE_LAB_ONLY and not policy.is_allowlisted(ip):
        # The demo and labs: nothing outside PROBE_ALLOWED_NETWORKS, public or not, even if
        # someone imports a real feed through the UI.
        raise TargetRefused(
            "lab_only", f"refusing to connect to {ip}: lab-only mode allows only "
            "PROBE_ALLOWED_NETWORKS"
        )
    try:
        policy.check(ip)
    except AddressRejected as exc:
        raise TargetRefused(exc.code, f"refusing to connect to {ip}: {exc.message}") from None
    return ip


def resolve_checked(host: str, port: int) -> list[str]:
    """Resolve `host` and return its addresses; refuse if any of them is not allowed.

    Refusing when *any* address is internal (not just the first) closes the trick of a name
    with one public and one internal record.
    """
    try:
        return [str(check_target(host))]
    except AddressRejected as exc:
        if exc.code != "invalid":
            raise
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchError(f"cannot resolve {host}: {exc.strerror}", permanent=False) from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    for address in addresses:
        check_target(address)
    return addresses


async def open_connection(
    ip_text: str, port: int, *, timeout: float, limit: int = 65536
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """asyncio TCP connect to a checked address, with a connect timeout."""
    ip = check_target(ip_text)
    return await asyncio.wait_for(
        asyncio.open_connection(str(ip), port, limit=limit), timeout=timeout
    )


def connect_tcp(ip_text: str, port: int, *, timeout: float) -> socket.socket:
    """Blocking TCP connect to a checked address (WHOIS and other simple clients)."""
    ip = check_target(ip_text)
    return socket.create_connection((str(ip), port), timeout=timeout)


def fetch_url_to_file(
    url: str, dest: BinaryIO, *, max_bytes: int, timeout: float = 30.0, max_redirects: int = 5
) -> int:
    """Stream `url` into `dest`, checking every hop's address; returns bytes written."""
    for _hop in range(max_redirects + 1):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FetchError(f"only http(s) URLs can be fetched, not {url!r}", permanent=True)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            address = resolve_checked(parts.hostname, port)[0]
        except AddressRejected as exc:
            raise FetchError(str(exc), permanent=True) from None
        # Connect to the checked address; keep the name for Host and TLS (SNI + verification).
        host_for_url = f"[{address}]" if ":" in address else address
        pinned = parts._replace(netloc=f"{host_for_url}:{port}").geturl()
        headers = {"Host": parts.netloc.rsplit("@", 1)[-1], "User-Agent": USER_AGENT}
        try:
            # trust_env=False: a proxy from the environment would bypass the address pinning.
            with httpx.Client(
                timeout=timeout, follow_redirects=False, trust_env=False
            ) as client, client.stream(
                "GET", pinned, headers=headers, extensions={"sni_hostname": parts.hostname},
            ) as response:
                if response.is_redirect:
                    url = urljoin(url, response.headers.get("location", ""))
                    continue
                if response.status_code != 200:
                    raise FetchError(
                        f"{url} answered HTTP {response.status_code}",
                        permanent=400 <= response.status_code < 500
                        and response.status_code != 429,
                    )
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise FetchError(
                        f"{url} is {int(declared)} bytes, over the {max_bytes}-byte limit",
                        permanent=True,
                    )
                written = 0
                for chunk in response.iter_bytes(65536):
                    written += len(chunk)
                    if written > max_bytes:
                        raise FetchError(
                            f"{url} is over the {max_bytes}-byte limit", permanent=True
                        )
                    dest.write(chunk)
                return written
        except httpx.TimeoutException:
            raise FetchError(f"{url} timed out", permanent=False) from None
        except httpx.HTTPError as exc:
            raise FetchError(f"{url}: {exc}", permanent=False) from None
    raise FetchError(f"{url}: more than {max_redirects} redirects", permanent=True)
