"""RDAP over HTTP and WHOIS over TCP port 43, and the RDAP-then-WHOIS look-up policy.

Every connection goes through `campaign.outbound`: names are resolved and checked there, and
the checked address is the one connected to (RDAP pins it in the URL and sends the name as
Host and TLS server name). Answers are read with byte caps and an overall deadline, because a
hostile or broken server can drip bytes forever. Registries are paced and backed off per
registry; a refusal or an outage is a temporary failure that the caller retries later.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpx

from campaign import outbound
from campaign.addresses import AddressRejected
from probes.contacts import rdap, whois
from probes.contacts.records import HIGH, MEDIUM, LookupAnswer, NetworkInfo

RDAP_MAX_BYTES = 1024 * 1024
WHOIS_MAX_BYTES = 256 * 1024
MAX_REDIRECTS = 3
MAX_REFERRALS = 3
RAW_KEEP_CHARS = 64 * 1024
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class RateLimiter:
    """Paces queries per registry and backs off from one that refused us.

    `per_second` is the steady pace (0 = unpaced), per registry: registries are asked
    concurrently (one thread each, resolving.py), each at its own pace. After a refusal the
    registry is left alone for exactly its `Retry-After`, or, when it gives none, an
    exponential delay (30 s, 60 s, … up to 15 min). Safe to share between threads.
    """

    BACKOFF_BASE = 30.0
    BACKOFF_MAX = 900.0

    def __init__(
        self,
        per_second: float = 0.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self.clock = clock
        self.sleep = sleep
        self._next_slot: dict[str, float] = {}
        self._blocked_until: dict[str, float] = {}
        self._strikes: dict[str, int] = {}
        self._lock = threading.Lock()

    def blocked_for(self, key: str) -> float:
        return max(0.0, self._blocked_until.get(key, 0.0) - self.clock())

    def acquire(self, key: str) -> None:
        """Wait for this registry's next slot; the caller checked `blocked_for` first."""
        if not self.interval:
            return
        with self._lock:
            now = self.clock()
            slot = max(now, self._next_slot.get(key, 0.0))
            self._next_slot[key] = slot + self.interval
        if slot > now:
            self.sleep(slot - now)  # outside the lock: other registries' threads go on

    def penalise(self, key: str, retry_after: float | None = None) -> float:
        """Leave the registry alone: for its Retry-After exactly, else an exponential wait."""
        with self._lock:
            strikes = self._strikes.get(key, 0)
            self._strikes[key] = strikes + 1
            if retry_after is not None:
                delay = min(self.BACKOFF_MAX, retry_after)
            else:
                delay = min(self.BACKOFF_MAX, self.BACKOFF_BASE * 2**strikes)
            self._blocked_until[key] = self.clock() + delay
            return delay

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._strikes.pop(key, None)


@dataclass
class QueryCounter:
    """Look-ups actually sent: what `resolve_contacts` reports as `queries`."""

    rdap: int = 0
    whois: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, kind: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, kind, getattr(self, kind) + n)

    @property
    def total(self) -> int:
        return self.rdap + self.whois


def _retry_after(value: str | None) -> float | None:
    if value and value.strip().isdigit():
        return float(value.strip())
    return None


class RdapClient:
    def __init__(
        self,
        bootstrap: rdap.Bootstrap,
        *,
        timeout: float = 10.0,
        limiter: RateLimiter | None = None,
        counter: QueryCounter | None = None,
        max_bytes: int = RDAP_MAX_BYTES,
        wait_limit: float = 30.0,
        max_waits: int = 3,
    ) -> None:
        self.bootstrap = bootstrap
        # A 429 whose Retry-After is at most `wait_limit` seconds is waited out (at most
        # `max_waits` times per address); a longer one fails the host until a later run.
        self.wait_limit, self.max_waits = wait_limit, max_waits
        self.timeout = timeout
        self.limiter = limiter or RateLimiter()
        self.counter = counter or QueryCounter()
        self.max_bytes = max_bytes
        # trust_env=False: an HTTP(S)_PROXY variable must not route around the pinning.
        self.http = httpx.Client(
            timeout=httpx.Timeout(timeout), follow_redirects=False, trust_env=False,
            headers={"User-Agent": outbound.USER_AGENT, "Accept": "application/rdap+json"},
        )
        self._addresses: dict[tuple[str, int], str] = {}

    def close(self) -> None:
        self.http.close()

    def registry_of(self, url: str) -> str:
        bases = [b for b in self.bootstrap.base_urls if url.startswith(b)]
        return max(bases, key=len) if bases else urlsplit(url).netloc

    def lookup(self, ip_text: str) -> LookupAnswer:
        bases = self.bootstrap.servers_for(ip_text)
        if not bases:
            raise rdap.RdapError(f"no RDAP server is listed for {ip_text}", permanent=True)
        url = rdap.query_url(bases[0], ip_text)
        visited = {url}
        waited = 0
        hops = 0
        while hops <= MAX_REDIRECTS:
            registry = self.registry_of(url)
            status, headers, body = self._get(url, registry)
            if status in REDIRECT_STATUSES:
                location = urljoin(url, headers.get("location", ""))
                # A redirect is attacker-influenced: only to servers the bootstrap lists.
                if not self.bootstrap.is_known(location):
                    raise rdap.RdapError(
                        f"{registry} redirected to {location[:200]!r}, not a known RDAP server",
                        permanent=True,
                    )
                if location in visited:
                    raise rdap.RdapError(f"redirect loop at {location[:200]}", permanent=True)
                visited.add(location)
                url = location
                hops += 1
                continue
            if status == 200:
                self.limiter.succeeded(registry)
                answer = rdap.parse_ip_network(rdap.decode_json(body, where=registry),
                                               server=registry)
                answer.raw = body[:RAW_KEEP_CHARS].decode("utf-8", "replace")
                return answer
            detail = _error_detail(body)
            if status == 429:
                retry_after = _retry_after(headers.get("retry-after"))
                delay = self.limiter.penalise(registry, retry_after)
                if (retry_after is not None and retry_after <= self.wait_limit
                        and waited < self.max_waits):
                    # A short, explicit pause: wait it out on this registry's thread and
                    # ask again in this run, instead of failing the host until the next one.
                    waited += 1
                    self.limiter.sleep(delay + 0.001)
                    continue
                raise rdap.RdapError(
                    f"{registry} is rate-limiting us (HTTP 429{detail}); backing off {delay:.0f}s",
                    permanent=False, rate_limited=True, status=status,
                )
            if status == 404:
                raise rdap.RdapError(f"{registry} has no network for {ip_text} (HTTP 404)",
                                     permanent=True, status=status)
            raise rdap.RdapError(
                f"{registry} answered HTTP {status}{detail}",
                permanent=400 <= status < 500, status=status,
            )
        raise rdap.RdapError(f"more than {MAX_REDIRECTS} RDAP redirects for {ip_text}",
                             permanent=True)

    def _address_for(self, host: str, port: int) -> str:
        key = (host, port)
        if key not in self._addresses:
            self._addresses[key] = outbound.resolve_checked(host, port)[0]
        return self._addresses[key]

    def _get(self, url: str, registry: str) -> tuple[int, httpx.Headers, bytes]:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise rdap.RdapError(f"not an http(s) RDAP URL: {url[:200]!r}", permanent=True)
        blocked = self.limiter.blocked_for(registry)
        if blocked:
            raise rdap.RdapError(f"{registry} asked us to back off ({blocked:.0f}s left)",
                                 permanent=False, rate_limited=True)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            address = self._address_for(parts.hostname, port)
        except AddressRejected as exc:
            raise rdap.RdapError(str(exc), permanent=True) from None
        except outbound.FetchError as exc:
            raise rdap.RdapError(str(exc), permanent=exc.permanent) from None
        # Connect to the checked address; the name goes in Host and in TLS (SNI + checks).
        netloc = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
        pinned = parts._replace(netloc=netloc).geturl()
        self.limiter.acquire(registry)
        self.counter.add("rdap")
        deadline = time.monotonic() + 3 * self.timeout
        try:
            with self.http.stream(
                "GET", pinned, headers={"Host": parts.netloc.rsplit("@", 1)[-1]},
                extensions={"sni_hostname": parts.hostname},
            ) as response:
                if response.status_code in REDIRECT_STATUSES:
                    return response.status_code, response.headers, b""
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes(65536):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise rdap.RdapError(f"{registry} sent over {self.max_bytes} bytes",
                                             permanent=False)
                    if time.monotonic() > deadline:
                        raise rdap.RdapError(f"{registry} answered too slowly", permanent=False)
                    chunks.append(chunk)
                return response.status_code, response.headers, b"".join(chunks)
        except httpx.ConnectError as exc:
            self.counter.add("rdap", -1)  # nothing was sent: the registry is unreachable
            raise rdap.RdapError(f"{registry} is unreachable: {exc}"[:300],
                                 permanent=False) from None
        except httpx.TimeoutException:
            raise rdap.RdapError(f"{registry} timed out", permanent=False) from None
        except httpx.HTTPError as exc:
            # Includes bodies cut short of their Content-Length: never parse half a body.
            raise rdap.RdapError(f"{registry}: {type(exc).__name__}: {exc}"[:300],
                                 permanent=False) from None


def _error_detail(body: bytes) -> str:
    try:
        text = rdap.error_text(rdap.decode_json(body[:65536]))
    except rdap.RdapError:
        return ""
    return f": {text[:160]}" if text else ""


class WhoisClient:
    def __init__(
        self,
        start: tuple[str, int],
        *,
        timeout: float = 10.0,
        limiter: RateLimiter | None = None,
        counter: QueryCounter | None = None,
        max_bytes: int = WHOIS_MAX_BYTES,
    ) -> None:
        self.start = start
        self.timeout = timeout
        self.limiter = limiter or RateLimiter()
        self.counter = counter or QueryCounter()
        self.max_bytes = max_bytes
        # IANA's referrals cover whole /8s: remember them so IANA is asked once per block.
        self._referrals: list[tuple[NetworkInfo, tuple[str, int]]] = []
        # "No entries" answers, by the /24 (IPv4) or /48 (IPv6) of the address: registries
        # register nothing smaller, so the other addresses there would get the same answer.
        self._absent: dict[ipaddress.IPv4Network | ipaddress.IPv6Network, str] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _block_of(ip_text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        ip = ipaddress.ip_address(ip_text)
        return ipaddress.ip_network(f"{ip}/{24 if ip.version == 4 else 48}", strict=False)

    def lookup(self, ip_text: str) -> tuple[LookupAnswer, list[str]]:
        """Follow referrals from the start server; returns the answer and the server chain."""
        absent = self._absent.get(self._block_of(ip_text))
        if absent is not None:
            raise whois.WhoisError(f"{absent} (not asked again for {ip_text} in this run)",
                                   permanent=True)
        server = self.start
        chain: list[str] = []
        for known, target in self._referrals:
            if known.contains(ip_text):
                chain.append(whois.format_server(server) + " (cached referral)")
                server = target
                break
        for _hop in range(MAX_REFERRALS + 1):
            name = whois.format_server(server)
            chain.append(name)
            text = whois.decode(self.query(server, whois.query_for(server[0], ip_text)))
            answer = whois.parse(text)
            if answer.rate_limited:
                delay = self.limiter.penalise(f"whois:{name}")
                raise whois.WhoisError(
                    f"{name} refused the query ({answer.error or 'limit reached'}); "
                    f"backing off {delay:.0f}s", permanent=False, rate_limited=True,
                )
            referral = answer.referral
            if referral and referral != server and whois.format_server(referral) not in chain:
                if server == self.start and len(self._referrals) < 1000:
                    net = whois.extract(answer, ip=ip_text).network
                    if net.contains(ip_text):
                        with self._lock:
                            self._referrals.append((net, referral))
                server = referral
                continue
            self.limiter.succeeded(f"whois:{name}")
            try:
                result = whois.extract(answer, ip=ip_text, server=name)
            except whois.WhoisError as exc:
                if answer.not_found and not answer.blocks:
                    with self._lock:
                        if len(self._absent) < 100_000:
                            self._absent[self._block_of(ip_text)] = str(exc)
                raise
            result.raw = text[:RAW_KEEP_CHARS]
            return result, chain
        raise whois.WhoisError(f"more than {MAX_REFERRALS} WHOIS referrals for {ip_text}",
                               permanent=True)

    def query(self, server: tuple[str, int], line: str) -> bytes:
        host, port = server
        name = whois.format_server(server)
        key = f"whois:{name}"
        blocked = self.limiter.blocked_for(key)
        if blocked:
            raise whois.WhoisError(f"{name} asked us to back off ({blocked:.0f}s left)",
                                   permanent=False, rate_limited=True)
        try:
            address = outbound.resolve_checked(host, port)[0]
        except AddressRejected as exc:
            raise whois.WhoisError(str(exc), permanent=True) from None
        except outbound.FetchError as exc:
            raise whois.WhoisError(str(exc), permanent=exc.permanent) from None
        self.limiter.acquire(key)
        deadline = time.monotonic() + 3 * self.timeout
        received = bytearray()
        try:
            with outbound.connect_tcp(address, port, timeout=self.timeout) as sock:
                self.counter.add("whois")  # counted once connected: the query is on its way
                sock.sendall(line.encode("ascii", "replace") + b"\r\n")
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        return bytes(received)
                    received += chunk
                    if len(received) > self.max_bytes:
                        raise whois.WhoisError(
                            f"{name} sent over {self.max_bytes} bytes; answer discarded",
                            permanent=False,
                        )
                    if time.monotonic() > deadline:
                        raise whois.WhoisError(f"{name} answered too slowly", permanent=False)
        except TimeoutError:
            raise whois.WhoisError(f"{name} timed out", permanent=False) from None
        except AddressRejected as exc:
            raise whois.WhoisError(str(exc), permanent=True) from None
        except OSError as exc:
            raise whois.WhoisError(f"{name}: {exc.strerror or exc}", permanent=False) from None


# --- the look-up policy --------------------------------------------------------------------

FOUND = "found"
NO_CONTACT = "no_contact"
FAILED = "failed"


@dataclass
class Resolution:
    """The outcome for one address: found, definitively no contact, or failed (retry)."""

    status: str
    answer: LookupAnswer | None = None
    network: NetworkInfo | None = None
    errors: list[str] = field(default_factory=list)
    rate_limited: bool = False
    whois_chain: list[str] = field(default_factory=list)
    # Shorter cache life for a low-confidence answer kept only because WHOIS was down.
    provisional: bool = False

    @property
    def error(self) -> str:
        return "; ".join(self.errors)[:1000]


class ContactLookup:
    """RDAP first; WHOIS when RDAP fails or offers no abuse role. One instance per run."""

    def __init__(self, rdap_client: RdapClient | None, whois_client: WhoisClient | None,
                 counter: QueryCounter) -> None:
        self.rdap = rdap_client
        self.whois = whois_client
        self.counter = counter

    def close(self) -> None:
        if self.rdap:
            self.rdap.close()

    def registry_key(self, ip_text: str) -> str:
        """Which registry an address's look-up goes to first (the concurrency unit)."""
        if self.rdap is not None:
            servers = self.rdap.bootstrap.servers_for(ip_text)
            if servers:
                return servers[0]
        return "whois"

    def resolve(self, ip_text: str) -> Resolution:
        ip_text = str(ipaddress.ip_address(ip_text))
        errors: list[str] = []
        temporary = rate_limited = False
        rdap_answer: LookupAnswer | None = None
        if self.rdap is not None:
            try:
                rdap_answer = self.rdap.lookup(ip_text)
            except rdap.RdapError as exc:
                errors.append(f"RDAP: {exc}")
                temporary |= not exc.permanent
                rate_limited |= exc.rate_limited
        best = rdap_answer.best() if rdap_answer else None
        if best is not None and best.confidence in (HIGH, MEDIUM):
            return Resolution(FOUND, rdap_answer, rdap_answer.network)
        whois_answer: LookupAnswer | None = None
        chain: list[str] = []
        whois_temporary = False
        if self.whois is not None:
            try:
                whois_answer, chain = self.whois.lookup(ip_text)
            except whois.WhoisError as exc:
                errors.append(f"WHOIS: {exc}")
                whois_temporary = not exc.permanent
                rate_limited |= exc.rate_limited
        network = _better_network(rdap_answer, whois_answer, ip_text)
        whois_best = whois_answer.best() if whois_answer else None
        if whois_best is not None and whois_best.confidence in (HIGH, MEDIUM):
            return Resolution(FOUND, whois_answer, network, errors, whois_chain=chain)
        if best is not None:
            return Resolution(FOUND, rdap_answer, network, errors, whois_chain=chain,
                              provisional=whois_temporary)
        if whois_best is not None:
            return Resolution(FOUND, whois_answer, network, errors, whois_chain=chain)
        # "No contact" is final only if every registry answered; otherwise ask again later.
        if temporary or whois_temporary:
            return Resolution(FAILED, None, network, errors, rate_limited, chain)
        return Resolution(NO_CONTACT, rdap_answer or whois_answer, network, errors,
                          whois_chain=chain)


def _better_network(
    rdap_answer: LookupAnswer | None, whois_answer: LookupAnswer | None, ip_text: str
) -> NetworkInfo | None:
    """RDAP's range when it holds the address, else WHOIS's; fill gaps from the other."""
    nets = [a.network for a in (rdap_answer, whois_answer) if a is not None]
    if not nets:
        return None
    chosen = next((n for n in nets if n.contains(ip_text)), nets[0])
    for other in nets:
        if other is not chosen:
            chosen.country = chosen.country or other.country
            chosen.organisation = chosen.organisation or other.organisation
    return chosen
