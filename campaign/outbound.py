"""The one seam for outbound network I/O: feed URLs, probes, RDAP and WHOIS.

Every connection the product opens goes through here, and here alone decides whether a target
is allowed: public unicast addresses only, unless PROBE_ALLOWED_NETWORKS (labs and tests)
says otherwise. Host names are resolved here and the *checked* address is the one connected
to, so DNS rebinding cannot slip an internal address in between check and connect.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
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


# Content codings a feed body may arrive in. We decode them ourselves, in bounded pieces:
# httpx decodes each received chunk in one call, so a 2 KB `gzip, gzip` body became gigabytes
# in memory before any size check could run.
ACCEPT_ENCODING = "gzip, deflate"
_ZLIB_CODINGS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS,
                 "deflate": zlib.MAX_WBITS}
MAX_STACKED_CODINGS = 3
_PIECE = 65536  # most bytes one read or one decoding step hands on


def content_codings(header: str) -> list[str]:
    """The codings of a Content-Encoding header, in the order they were applied.

    Raises FetchError for codings we cannot decode, and for stacks deeper than any real
    server sends (each layer costs a decoder's window of memory).
    """
    codings = [c.strip().lower() for c in header.split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    unknown = sorted({c for c in codings if c not in _ZLIB_CODINGS})
    if unknown:
        raise FetchError(
            f"unsupported Content-Encoding {', '.join(unknown)} (only gzip and deflate "
            "can be decoded)", permanent=True,
        )
    if len(codings) > MAX_STACKED_CODINGS:
        raise FetchError(
            f"Content-Encoding stacks {len(codings)} codings; at most "
            f"{MAX_STACKED_CODINGS} are decoded", permanent=True,
        )
    return codings


def _inflate(chunks: Iterable[bytes], coding: str) -> Iterator[bytes]:
    """Decode one zlib-family coding lazily, never yielding more than _PIECE bytes at once."""
    wbits = _ZLIB_CODINGS[coding]
    members = coding != "deflate"  # gzip may hold several members one after another
    inflater = zlib.decompressobj(wbits)
    fed = False
    for data in chunks:
        while data:
            if inflater.eof:
                if not members:
                    break  # bytes after a deflate stream's end are not part of the body
                inflater = zlib.decompressobj(wbits)
            try:
                out = inflater.decompress(data, _PIECE)
            except zlib.error as exc:
                if wbits == zlib.MAX_WBITS and not fed:
                    # Some servers send raw deflate without the zlib header (as httpx allows).
                    wbits = -zlib.MAX_WBITS
                    inflater = zlib.decompressobj(wbits)
                    continue
                raise FetchError(f"the {coding}-encoded body is corrupt: {exc}",
                                 permanent=True) from None
            fed = True
            if out:
                yield out
            # Leftover input is in unconsumed_tail (output was capped) or, after the end of
            # a member, in unused_data; a full piece may also leave output pending.
            data = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
            while not data and len(out) == _PIECE and not inflater.eof:
                out = inflater.decompress(b"", _PIECE)
                if out:
                    yield out
                data = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
    if fed and not inflater.eof:
        raise FetchError(f"the {coding}-encoded body ends early", permanent=False)


def decode_body(chunks: Iterable[bytes], codings: list[str]) -> Iterator[bytes]:
    """Undo `codings` (as content_codings returns them) lazily, last applied first."""
    decoded: Iterable[bytes] = chunks
    for coding in reversed(codings):
        decoded = _inflate(decoded, coding)
    return iter(decoded)


class _Deadline:
    """Cuts a fetch off at one wall-clock deadline, wherever it is blocked.

    Per-read timeouts do not bound a server that sends one line every few seconds, nor one
    that trickles its headers. A timer shuts the connection's socket down at the deadline,
    which wakes the blocked read; the fetch then reports the deadline, not what the read saw.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ends_at = time.monotonic() + seconds
        self.expired = threading.Event()
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()

    def remaining(self) -> float:
        return self.ends_at - time.monotonic()

    def trace(self, name: str, info: dict) -> None:
        """httpcore's `trace` extension: remember each connection's socket as it opens."""
        if not name.endswith("connect_tcp.complete"):
            return
        sock = info["return_value"].get_extra_info("socket")
        with self._lock:
            self._socket = sock
            if self.expired.is_set():
                self._shutdown(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired.set()
            if self._socket is not None:
                self._shutdown(self._socket)

    @staticmethod
    def _shutdown(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed: the hop ended on its own

    def error(self, url: str) -> FetchError:
        # Permanent: a retry would hold a worker just as long for the same result.
        return FetchError(
            f"{url} did not finish within the {self.seconds:g}-second deadline "
            "(FEED_FETCH_DEADLINE)", permanent=True,
        )


def _capped(chunks: Iterable[bytes], url: str, max_bytes: int) -> Iterator[bytes]:
    """The bytes as received, refused once more than `max_bytes` of them arrived."""
    received = 0
    for chunk in chunks:
        received += len(chunk)
        if received > max_bytes:
            raise FetchError(f"{url} is over the {max_bytes}-byte limit", permanent=True)
        yield chunk


@dataclass(frozen=True, slots=True)
class Fetched:
    """What a fetch got: 200 with the body written, or 304 (the copy we have is current)."""

    status: int
    bytes: int
    etag: str = ""
    last_modified: str = ""

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def fetch_url_to_file(
    url: str, dest: BinaryIO, *, max_bytes: int, timeout: float = 30.0, max_redirects: int = 5,
    deadline: float | None = None,
) -> int:
    """Stream `url` into `dest`, checking every hop's address; returns bytes written.

    `max_bytes` caps both the bytes received and the bytes they decode to; `timeout` is per
    connect and read; `deadline` (default FEED_FETCH_DEADLINE) bounds the whole fetch,
    redirects included.
    """
    return fetch_url(url, dest, max_bytes=max_bytes, timeout=timeout,
                     max_redirects=max_redirects, deadline=deadline).bytes


def fetch_url(
    url: str, dest: BinaryIO, *, max_bytes: int, timeout: float = 30.0, max_redirects: int = 5,
    deadline: float | None = None, etag: str = "", last_modified: str = "",
    headers: Mapping[str, str] | None = None,
) -> Fetched:
    """`fetch_url_to_file`, conditional and with headers of the caller's.

    With `etag`/`last_modified` (from the last 200) the request carries If-None-Match /
    If-Modified-Since, and a 304 answer writes nothing. `headers` (an Authorization, say)
    go only to the URL's own origin: a redirect elsewhere does not get them.
    """
    seconds = float(deadline if deadline is not None else settings.FEED_FETCH_DEADLINE)
    request_headers: dict[str, str] = {}
    if etag:
        request_headers["If-None-Match"] = etag
    if last_modified:
        request_headers["If-Modified-Since"] = last_modified
    with _Deadline(seconds) as clock:
        try:
            return _fetch(url, dest, max_bytes=max_bytes, timeout=timeout,
                          max_redirects=max_redirects, clock=clock,
                          conditional=request_headers, private=dict(headers or {}))
        except FetchError:
            if clock.expired.is_set():
                raise clock.error(url) from None
            raise


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


def _fetch(
    url: str, dest: BinaryIO, *, max_bytes: int, timeout: float, max_redirects: int,
    clock: _Deadline, conditional: Mapping[str, str], private: Mapping[str, str],
) -> Fetched:
    origin = _origin(url)
    for _hop in range(max_redirects + 1):
        if clock.remaining() <= 0:
            raise clock.error(url)
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
        headers = {**conditional,
                   **(private if _origin(url) == origin else {}),
                   "Host": parts.netloc.rsplit("@", 1)[-1], "User-Agent": USER_AGENT,
                   "Accept-Encoding": ACCEPT_ENCODING}
        try:
            # trust_env=False: a proxy from the environment would bypass the address pinning.
            with httpx.Client(
                timeout=max(0.001, min(timeout, clock.remaining())), follow_redirects=False,
                trust_env=False,
            ) as client, client.stream(
                "GET", pinned, headers=headers,
                extensions={"sni_hostname": parts.hostname, "trace": clock.trace},
            ) as response:
                if clock.expired.is_set():
                    raise clock.error(url)
                if response.status_code == 304 and conditional:
                    return Fetched(304, 0, response.headers.get("etag", ""),
                                   response.headers.get("last-modified", ""))
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
                codings = content_codings(response.headers.get("content-encoding", ""))
                raw = _capped(response.iter_raw(_PIECE), url, max_bytes)
                written = 0
                for piece in decode_body(raw, codings):
                    written += len(piece)
                    if written > max_bytes:
                        raise FetchError(
                            f"{url} is over the {max_bytes}-byte limit once decoded "
                            f"(Content-Encoding: {', '.join(codings)})", permanent=True,
                        )
                    if clock.expired.is_set():
                        raise clock.error(url)
                    dest.write(piece)
                # A shut-down socket can look like the end of a body sent without a length.
                if clock.expired.is_set():
                    raise clock.error(url)
                return Fetched(200, written, response.headers.get("etag", ""),
                               response.headers.get("last-modified", ""))
        except httpx.TimeoutException:
            if clock.expired.is_set() or clock.remaining() <= 0:
                raise clock.error(url) from None
            raise FetchError(f"{url} timed out", permanent=False) from None
        except httpx.HTTPError as exc:
            if clock.expired.is_set():
                raise clock.error(url) from None
            raise FetchError(f"{url}: {exc}", permanent=False) from None
    raise FetchError(f"{url}: more than {max_redirects} redirects", permanent=True)
