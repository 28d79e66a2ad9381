"""WHOIS (RFC 3912) answers without the network: decoding, referrals and abuse contacts.

RFC 3912 defines no format, so this reads what the five RIRs actually send: RPSL objects
(RIPE, APNIC, AFRINIC, LACNIC's variant) and ARIN's `Key: value` blocks. Every byte comes
from a server we do not control: the text is decoded leniently, bounded, and no input makes
these functions raise anything but WhoisError.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from probes.contacts.records import (
    HIGH,
    LOW,
    Candidate,
    LookupAnswer,
    NetworkInfo,
    clean_country,
    clean_email,
    clip,
    range_from_cidr,
    range_from_text,
)

MAX_PARSE_CHARS = 512 * 1024
MAX_LINES = 20000
DEFAULT_PORT = 43

_ATTR_RE = re.compile(r"^([A-Za-z][A-Za-z0-9_-]{0,40}):[ \t]*(.*)$")
_ABUSE_COMMENT_RE = re.compile(r"abuse contact for .{0,200}? is '([^'\s]{3,254})'", re.I)
_HOST_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*$")
# Phrases with which registries refuse or cut short an answer for querying too much.
_LIMIT_PHRASES = (
    "access denied", "access control limit", "limit exceeded", "query rate limit",
    "too many queries", "daily limit", "temporarily denied",
)
_NETWORK_KEYS = ("inetnum", "inet6num", "netrange")
_ABUSE_EMAIL_KEYS = ("orgabuseemail", "rabuseemail", "abuse-mailbox")
_FALLBACK_EMAIL_KEYS = (
    ("technical", ("orgtechemail", "rtechemail", "orgnocemail", "rnocemail")),
    ("administrative", ("orgadminemail", "radminemail")),
)


class WhoisError(Exception):
    """No usable answer; `permanent` False means ask again later."""

    def __init__(self, message: str, *, permanent: bool, rate_limited: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.rate_limited = rate_limited


Block = list[tuple[str, str]]


@dataclass
class WhoisAnswer:
    blocks: list[Block] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    referral: tuple[str, int] | None = None
    error: str = ""
    rate_limited: bool = False
    not_found: bool = False


def decode(data: bytes) -> str:
    """UTF-8 when it is, else ISO-8859-1 (what LACNIC and older servers send).

    Latin-1 maps every byte to a character, so decoding never fails and never loses bytes.
    """
    data = data[:MAX_PARSE_CHARS]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return text.replace("\x00", "")


def parse(text: str) -> WhoisAnswer:
    answer = WhoisAnswer()
    block: Block = []
    for raw in text[:MAX_PARSE_CHARS].splitlines()[:MAX_LINES]:
        line = raw.rstrip()
        if not line:
            if block:
                answer.blocks.append(block)
                block = []
            continue
        if line[0] in "%#":
            _read_comment(answer, line)
            continue
        if line[0] in " \t+" and block:
            key, value = block[-1]
            more = line.lstrip(" \t+").strip()
            block[-1] = (key, f"{value} {more}"[:1000])
            continue
        match = _ATTR_RE.match(line)
        if match:
            block.append((match.group(1).lower(), match.group(2).strip()[:1000]))
    if block:
        answer.blocks.append(block)
    answer.referral = _find_referral(answer.blocks)
    return answer


def _read_comment(answer: WhoisAnswer, line: str) -> None:
    answer.comments.append(line[:500])
    lowered = line.lower()
    if lowered.startswith("%error:"):
        code = lowered[7:10]
        if code == "101":
            answer.not_found = True
        elif not answer.error:
            answer.error = clip(line, 200)
            answer.rate_limited = answer.rate_limited or code.startswith("2")
    if any(phrase in lowered for phrase in _LIMIT_PHRASES):
        answer.rate_limited = True
        answer.error = answer.error or clip(line, 200)


def _find_referral(blocks: list[Block]) -> tuple[str, int] | None:
    for block in blocks:
        for key, value in block:
            if key in ("refer", "whois", "referralserver"):
                target = parse_server(value)
                if target:
                    return target
    return None


def parse_server(value: str) -> tuple[str, int] | None:
    """`whois.lacnic.net`, `whois://host:4343`, `127.0.0.1:4343`, `[::1]:43` → (host, port).

    `rwhois://` and anything else that is not plain port-43 WHOIS gives None.
    """
    text = value.strip()
    if "://" in text:
        scheme, _, text = text.partition("://")
        if scheme.lower() != "whois":
            return None
    text = text.strip().rstrip("/")
    port = DEFAULT_PORT
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":"):
            port_text = rest[1:]
        elif rest:
            return None
        else:
            port_text = ""
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            return None
        port = int(port_text)
    try:
        return str(ipaddress.ip_address(host)), port
    except ValueError:
        pass
    if not _HOST_RE.match(host):
        return None
    return host.lower(), port


def format_server(server: tuple[str, int]) -> str:
    host, port = server
    shown = f"[{host}]" if ":" in host else host
    return shown if port == DEFAULT_PORT else f"{shown}:{port}"


def query_for(server_host: str, ip_text: str) -> str:
    """The query line a server expects. ARIN needs `n + ` to show the network with its POCs."""
    if server_host.lower().rstrip(".") == "whois.arin.net":
        return f"n + {ip_text}"
    return ip_text


# --- reading a final answer ----------------------------------------------------------------


def extract(answer: WhoisAnswer, *, ip: str, server: str = "",
            all_roles: bool = False) -> LookupAnswer:
    """The network and ranked e-mail candidates of a registry's (non-referral) answer.

    Raises WhoisError when the registry refused or cut the answer short: a half answer may
    lack the object that carries the abuse address, so it is never used.
    """
    where = server or "the WHOIS server"
    if answer.error or answer.rate_limited:
        raise WhoisError(f"{where} refused the query: {answer.error or 'limit reached'}",
                         permanent=False, rate_limited=answer.rate_limited)
    if answer.not_found and not answer.blocks:
        raise WhoisError(f"{where} has no entry for {ip}", permanent=True)
    by_handle: dict[str, Block] = {}
    for block in answer.blocks:
        handle = _first(block, "nic-hdl") or (_first(block, "irt") if block[0][0] == "irt" else "")
        if handle:
            by_handle.setdefault(handle.upper(), block)
    net_block = _network_block(answer.blocks, ip)
    network = _network_info(net_block, answer.blocks)
    candidates: list[Candidate] = []

    def add(email: str | None, confidence: str, role: str, handle: str = "") -> None:
        if email and all(c.email != email for c in candidates):
            candidates.append(Candidate(email, confidence, role, handle))

    for comment in answer.comments:
        match = _ABUSE_COMMENT_RE.search(comment)
        if match:
            add(clean_email(match.group(1)), HIGH, "abuse")
    referenced = [*_all(net_block, "abuse-c"), *_all(net_block, "mnt-irt")]
    for org_key in ("org", "ownerid"):
        org = by_handle.get(_first(net_block, org_key).upper()) if net_block else None
        if org:
            referenced.extend(_all(org, "abuse-c"))
    for handle in referenced:
        target = by_handle.get(handle.upper())
        if target:
            add(clean_email(_first(target, "abuse-mailbox") or _first(target, "e-mail")),
                HIGH, "abuse", handle)
    for block in answer.blocks:
        for key, value in block:
            if key in _ABUSE_EMAIL_KEYS:
                add(clean_email(value), HIGH, "abuse", _first(block, "nic-hdl"))
    if candidates and not all_roles:
        return LookupAnswer(network, candidates, "whois", server)
    # No abuse contact anywhere (or all roles asked for): the technical and administrative
    # contacts of the network.
    for role, keys in _FALLBACK_EMAIL_KEYS:
        for block in answer.blocks:
            for key, value in block:
                if key in keys:
                    add(clean_email(value), LOW, role)
    for role, key in (("technical", "tech-c"), ("administrative", "admin-c"),
                      ("administrative", "owner-c")):
        for handle in _all(net_block, key):
            target = by_handle.get(handle.upper())
            if target:
                add(clean_email(_first(target, "e-mail")), LOW, role, handle)
    return LookupAnswer(network, candidates, "whois", server)


def _network_block(blocks: list[Block], ip: str) -> Block:
    """The most specific network object that contains `ip` (or the first one at all)."""
    best: Block = []
    best_size = None
    for block in blocks:
        if block[0][0] not in _NETWORK_KEYS:
            continue
        bounds = range_from_text(block[0][1])
        if bounds is None:
            if not best:
                best = block
            continue
        info = NetworkInfo(start=bounds[0], end=bounds[1])
        if info.contains(ip):
            first, last = info.bounds()  # type: ignore[misc]
            size = int(last) - int(first)
            if best_size is None or size < best_size:
                best, best_size = block, size
        elif not best:
            best = block
    return best


def _network_info(net: Block, blocks: list[Block]) -> NetworkInfo:
    info = NetworkInfo()
    if not net:
        return info
    bounds = range_from_text(net[0][1])
    if bounds:
        info.start, info.end = bounds
    cidr_text = _first(net, "cidr") or (net[0][1] if "/" in net[0][1] else "")
    for part in cidr_text.split(",")[:64]:
        if range_from_cidr(part):
            info.cidrs.append(str(ipaddress.ip_network(part.strip(), strict=False)))
    info.name = clip(_first(net, "netname"), 100)
    info.handle = clip(_first(net, "nethandle") or net[0][1], 100)
    info.parent_handle = clip(_first(net, "parent"), 100)
    info.country = clean_country(_first(net, "country"))
    info.organisation = clip(_first(net, "owner") or _first(net, "org-name"))
    org_handle = _first(net, "org").upper()
    for block in blocks:
        is_org = block[0][0] == "organisation" and block[0][1].upper() == org_handle
        if is_org or block[0][0] == "orgname":
            info.organisation = info.organisation or clip(
                _first(block, "org-name") or _first(block, "orgname")
            )
            info.country = info.country or clean_country(_first(block, "country"))
    if not info.organisation:
        info.organisation = clip(_first(net, "descr"))
    return info


def _first(block: Block, key: str) -> str:
    for k, value in block:
        if k == key:
            return value
    return ""


def _all(block: Block, key: str) -> list[str]:
    return [value for k, value in block if k == key and value][:20]
