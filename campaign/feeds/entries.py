"""What a feed parser yields: host entries and line issues, and the helpers every format's
parser words its issues with. No Django here.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime

from campaign.addresses import AddressRejected


@dataclass(slots=True)
class Entry:
    line_no: int
    ip: str
    dedup_key: str
    port: int | None = None
    tag: str = ""
    seen_at: datetime | None = None
    evidence: dict[str, str] | None = None
    country: str = ""
    asn: int | None = None
    # A valid public network larger than one address: rejected after duplicate detection.
    network_note: str = ""
    # What this line says the host is suspected of ("relay", "proxy"), for formats that say
    # it per line (IntelMQ's classification); "" takes the import's kind.
    kind: str = ""


@dataclass(slots=True)
class Issue:
    line_no: int
    content: str
    reason: str
    message: str


class FormatError(ValueError):
    """The feed as a whole cannot be read in the requested or detected format."""




def _is_comment(text: str) -> bool:
    return not text or text[0] in "#;"


def _visible(text: str) -> str:
    """An issue's content as staff should see it: invisible and control characters (zero-width
    spaces, bidi overrides, a BOM, NUL…) written out as \\uXXXX, at most 200 characters."""
    if text.isascii() and text.isprintable():
        return text[:200]
    shown = "".join(
        "\\0" if ch == "\x00"
        else f"\\u{ord(ch):04x}" if ch != "\t" and unicodedata.category(ch) in ("Cc", "Cf", "Co",
                                                                                "Cs", "Zl", "Zp")
        else ch
        for ch in text[:200]
    )
    return shown[:200]


def _why_not_ascii(token: str) -> str:
    """For a token refused as not an address: the first character that is not plain ASCII,
    named (a fullwidth digit, a homoglyph dot, a zero-width space, a bidi override…)."""
    for ch in token:
        if not (ch.isascii() and ch.isprintable()):
            name = unicodedata.name(ch, "unnamed character")
            return f" (it contains U+{ord(ch):04X} {name}, not plain ASCII)"
    return ""


def _rejected(line_no: int, raw: str, exc: AddressRejected, token: str) -> Issue:
    message = exc.message
    if exc.code in ("invalid", "bad_port"):
        message += _why_not_ascii(token)
    return Issue(line_no, _visible(raw.strip()), exc.code, message)


def _too_long(line_no: int, text: str) -> Issue:
    return Issue(line_no, _visible(text), "too_long", "line longer than 8192 bytes")


def _control_chars(text: str) -> bool:
    return "\x00" in text or "\ufffd" in text


def _bad_bytes(line_no: int, text: str) -> Issue:
    return Issue(line_no, _visible(text), "bad_bytes", "NUL or undecodable bytes in the line")


def _port(text: str) -> int:
    # isascii: str.isdigit() also accepts '²' (int() then raises) and other scripts' digits.
    port = int(text) if text.isascii() and text.isdigit() and len(text) <= 6 else -1
    if not 1 <= port <= 65535:
        raise AddressRejected("bad_port", f"port {text} out of range 1-65535")
    return port


Parsed = Entry | Issue
