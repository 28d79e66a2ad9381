"""Reading what strangers' mail servers send us, without ever raising.

Replies arrive as raw MIME (or as an ESP's JSON rebuilt into a message by anymail) written
by any software, or by hand: undecodable bytes, unknown charsets, encoded words that are not,
NUL bytes, several From addresses, headers Python's own parser trips over. The structured
accessors of `email.message.EmailMessage` (and anymail's on top of them) raise on such input;
these helpers read the raw header values and payloads instead and always return plain,
storable text: no NUL (PostgreSQL refuses it), no lone surrogate (not encodable as UTF-8).
No Django here.
"""

from __future__ import annotations

import email.header
import email.utils
import re
from email.message import Message

from probes.contacts.records import clean_email

_SPACES = re.compile(r"\s+")


def clean_text(value: object, limit: int | None = None) -> str:
    """`value` as text a database column takes: no NUL, valid UTF-8, at most `limit` chars."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates (undecodable bytes kept by surrogateescape)
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text[:limit] if limit is not None else text


def one_line(value: object, limit: int | None = None) -> str:
    """clean_text folded to one line (headers are shown and matched as one line)."""
    return _SPACES.sub(" ", clean_text(value)).strip()[:limit]


def _decode_words(raw: str) -> str:
    """RFC 2047 encoded words decoded where possible, the raw text where not."""
    try:
        parts = email.header.decode_header(raw)
    except Exception:  # malformed encoded words: keep the raw text
        return raw
    out = []
    for chunk, charset in parts:
        if isinstance(chunk, str):
            out.append(chunk)
            continue
        try:
            out.append(chunk.decode(charset or "ascii", "replace"))
        except (LookupError, ValueError):  # unknown charset, or a NUL in its name
            out.append(chunk.decode("utf-8", "replace"))
    return "".join(out)


def header_values(message: Message, name: str) -> list[str]:
    """Every raw value of header `name`, as text (the parser's policy never runs on them)."""
    wanted = name.lower()
    values = []
    for key, value in message.raw_items():
        if str(key).lower() == wanted:
            values.append(clean_text(value))
    return values


def header_text(message: Message, name: str, limit: int | None = None) -> str:
    """The first `name` header, encoded words decoded, on one line."""
    values = header_values(message, name)
    return one_line(_decode_words(values[0]), limit) if values else ""


def addresses(message: Message, name: str) -> list[str]:
    """The plain addresses (clean_email) of every `name` header; the unusable ones dropped."""
    found = []
    try:
        pairs = email.utils.getaddresses(header_values(message, name))
    except Exception:  # the stdlib's parser on hostile input
        return []
    for _display, address in pairs:
        cleaned = clean_email(address)
        if cleaned and cleaned not in found:
            found.append(cleaned)
    return found


def _is_body(part: Message, content_type: str) -> bool:
    try:
        return (part.get_content_type() == content_type
                and part.get_content_disposition() != "attachment")
    except Exception:  # a Content-Type or -Disposition the parser cannot read
        return False


def body_text(message: Message, content_type: str) -> str:
    """The first `content_type` part that is not an attachment, decoded as best we can."""
    try:
        part = next((p for p in message.walk() if _is_body(p, content_type)), None)
    except Exception:  # a broken multipart structure
        return ""
    if part is None:
        return ""
    return part_text(part)


def part_text(part: Message, default_charset: str = "us-ascii") -> str:
    """One part's payload as text, decoded as best we can (transfer encoding, charset;
    `default_charset` for a part that names none)."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # a transfer encoding that does not decode: the raw payload, then
        payload = part.get_payload()
    if payload is None:
        return ""
    if not isinstance(payload, bytes):
        return clean_text(payload) if isinstance(payload, str) else ""
    try:
        text = payload.decode(part.get_content_charset() or default_charset, "replace")
    except Exception:  # an unknown charset, or one with a NUL in its name
        text = payload.decode("utf-8", "replace")
    return clean_text(text.replace("\r\n", "\n").replace("\r", "\n"))
