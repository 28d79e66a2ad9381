"""Plain data shared by the RDAP and WHOIS parsers: what a registry told us about a network.

No Django here. Everything in these records came from a registry answer, that is from the
Internet, so the constructors clean and bound what they keep.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

# Confidence of an address as the *abuse* desk of the network: "high" when the registry
# marks it as the abuse contact, "medium" when it does but says the contact is unvalidated,
# "low" for technical/administrative/registrant fall-backs, "manual" when staff set it.
HIGH = "high"
MEDIUM = "medium"
LOW = "low"
MANUAL = "manual"
CONFIDENCE_ORDER = {MANUAL: 4, HIGH: 3, MEDIUM: 2, LOW: 1}

# Networks wider than these are registry allocations (an RIR's /8), not an operator's
# network: caching one would answer for millions of unrelated hosts.
MAX_CACHE_PREFIX = {4: 8, 6: 16}

MAX_FIELD = 200

# Matched with fullmatch: `$` would also match before a final newline, and a label or local
# part ending in "\n" would let a registry answer put a line break in a To: header.
_LOCAL_RE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}")
_LABEL_RE = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_TLD_RE = re.compile(r"(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})")
EMAIL_IN_TEXT_RE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9.-]{1,253}")


def clean_email(value: object) -> str | None:
    """Return `value` as a normalised e-mail address (domain lower-cased), or None.

    Deliberately strict: an address we will write to must be a plain `local@domain.tld`;
    anything with quotes, spaces, IP literals or a dangling dot is refused rather than
    repaired.
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.lower().startswith("mailto:"):
        text = text[7:]
    text = text.strip().strip("<>'\"")
    if not text or len(text) > 254 or text.count("@") != 1:
        return None
    local, domain = text.split("@")
    domain = domain.lower()
    if (not _LOCAL_RE.fullmatch(local) or local.startswith(".") or local.endswith(".")
            or ".." in local):
        return None
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL_RE.fullmatch(label) for label in labels):
        return None
    if not _TLD_RE.fullmatch(labels[-1]):
        return None
    return f"{local}@{domain}"


def clip(value: object, limit: int = MAX_FIELD) -> str:
    """A registry string, made safe to store: text only, no control characters, bounded."""
    if not isinstance(value, str):
        return ""
    text = "".join(ch if ch.isprintable() else " " for ch in value).strip()
    return text[:limit]


def clean_country(value: object) -> str:
    text = clip(value, 8).upper()
    return text if len(text) == 2 and text.isalpha() and text.isascii() else ""


@dataclass
class Candidate:
    """One e-mail address a registry answer offers, with why we might use it."""

    email: str
    confidence: str
    role: str  # "abuse", "technical", "administrative", "registrant", ...
    handle: str = ""
    name: str = ""


@dataclass
class NetworkInfo:
    """The network an answer describes: its range and what the registry calls it."""

    start: str = ""
    end: str = ""
    cidrs: list[str] = field(default_factory=list)
    name: str = ""
    handle: str = ""
    parent_handle: str = ""
    country: str = ""
    organisation: str = ""

    def bounds(self) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...] | None:
        """(first, last) addresses if start/end form a valid range, else None."""
        try:
            first = ipaddress.ip_address(self.start)
            last = ipaddress.ip_address(self.end)
        except ValueError:
            return None
        if first.version != last.version or first > last:
            return None
        return first, last

    def contains(self, ip_text: str) -> bool:
        bounds = self.bounds()
        if bounds is None:
            return False
        try:
            ip = ipaddress.ip_address(ip_text)
        except ValueError:
            return False
        return ip.version == bounds[0].version and bounds[0] <= ip <= bounds[1]

    def cacheable_for(self, ip_text: str) -> bool:
        """Whether this range may answer for other addresses than the one asked about."""
        bounds = self.bounds()
        if bounds is None or not self.contains(ip_text):
            return False
        first, last = bounds
        size = int(last) - int(first) + 1
        return size <= 2 ** (first.max_prefixlen - MAX_CACHE_PREFIX[first.version])


@dataclass
class LookupAnswer:
    """What one registry answer (RDAP or WHOIS) yields once parsed."""

    network: NetworkInfo
    candidates: list[Candidate]
    source: str  # "rdap" or "whois"
    server: str = ""
    raw: str = ""  # the registry's answer as received (bounded), kept for audit

    def best(self) -> Candidate | None:
        if not self.candidates:
            return None
        # Stable: among equal confidence the registry's own order (abuse before fallbacks).
        return max(self.candidates, key=lambda c: CONFIDENCE_ORDER.get(c.confidence, 0))


def range_from_cidr(text: str) -> tuple[str, str] | None:
    try:
        net = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None
    return str(net.network_address), str(net.broadcast_address)


def range_from_text(text: str) -> tuple[str, str] | None:
    """`a.b.c.d - w.x.y.z`, `prefix/len` or one address → (first, last)."""
    text = text.strip()
    if " - " in text or (text.count("-") == 1 and "/" not in text):
        left, _, right = text.partition("-")
        try:
            first = ipaddress.ip_address(left.strip())
            last = ipaddress.ip_address(right.strip())
        except ValueError:
            return None
        if first.version != last.version or first > last:
            return None
        return str(first), str(last)
    if "/" in text:
        return _lacnic_cidr(text)
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    return str(ip), str(ip)


def _lacnic_cidr(text: str) -> tuple[str, str] | None:
    # LACNIC abbreviates IPv4 prefixes ("200.3.12/22"); pad them before parsing.
    prefix, _, length = text.partition("/")
    if "." in prefix and ":" not in prefix and prefix.count(".") < 3:
        prefix = prefix + ".0" * (3 - prefix.count("."))
    return range_from_cidr(f"{prefix}/{length}")
