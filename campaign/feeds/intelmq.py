"""IntelMQ events in: the harmonization's field names, one JSON object per line.

IntelMQ (the CERT community's feed pipeline) passes events between bots as flat objects with
dotted keys (`source.ip`, `classification.identifier`, `time.source`…); its file output can
also write them nested (`{"source": {"ip": …}}`). Both are read. An event's classification
says what the host is suspected of; what it means to us is decided here, in one table.

No Django here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime

from campaign.addresses import AddressPolicy, AddressRejected
from campaign.feeds.entries import (
    Entry,
    Issue,
    Parsed,
    _bad_bytes,
    _is_comment,
    _port,
    _rejected,
    _too_long,
    _visible,
)
from campaign.feeds.lines import LineTooLong

# classification.identifier → our kind. Shadowserver's reports as IntelMQ's parser names
# them (scan_http_proxy → open-http-proxy, scan_socks → open-socks), and the names other
# feeds and CERTs use for open mail relays.
IDENTIFIER_KINDS: Mapping[str, str] = {
    "open-http-proxy": "proxy",
    "open-proxy": "proxy",
    "http-proxy": "proxy",
    "open-socks": "proxy",
    "open-socks4": "proxy",
    "open-socks5": "proxy",
    "socks-proxy": "proxy",
    "proxy": "proxy",
    "open-smtp-relay": "relay",
    "open-mail-relay": "relay",
    "open-relay": "relay",
    "openrelay": "relay",
    "smtp-relay": "relay",
    "open-smtp": "relay",
}
# classification.type alone, when the identifier says nothing we know: IntelMQ 1.x/2.x's
# `proxy` type. `vulnerable-system` covers hundreds of things: it needs an identifier.
TYPE_KINDS: Mapping[str, str] = {"proxy": "proxy"}

MAX_EVIDENCE_VALUE = 500


def flatten(event: Mapping, prefix: str = "") -> dict[str, object]:
    """`{"source": {"ip": "x"}}` → `{"source.ip": "x"}`; flat events come back unchanged."""
    flat: dict[str, object] = {}
    for key, value in event.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and not name.startswith("extra"):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def event_kind(event: Mapping[str, object]) -> str:
    """`relay`, `proxy`, or "" when the classification names neither."""
    identifier = str(event.get("classification.identifier") or "").strip().lower()
    if identifier in IDENTIFIER_KINDS:
        return IDENTIFIER_KINDS[identifier]
    return TYPE_KINDS.get(str(event.get("classification.type") or "").strip().lower(), "")


def parse_time(value: object) -> datetime | None:
    """IntelMQ's `time.source`: ISO 8601 with an offset (`2026-11-22T10:01:02+00:00`)."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _evidence_value(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    # No NUL: PostgreSQL's jsonb refuses \u0000.
    return text.replace("\x00", "")[:MAX_EVIDENCE_VALUE]


def parse_intelmq_lines(lines: Iterable[tuple[int, str]], policy: AddressPolicy
                        ) -> Iterator[Parsed]:
    for line_no, raw in lines:
        text = raw.strip()
        if _is_comment(text):
            continue
        if type(raw) is LineTooLong:
            yield _too_long(line_no, raw)
            continue
        try:
            decoded = json.loads(text)
        except ValueError as exc:
            if "\x00" in raw or "\ufffd" in raw:
                yield _bad_bytes(line_no, raw)
            else:
                yield Issue(line_no, _visible(text), "bad_json", f"not a JSON object: {exc}")
            continue
        if not isinstance(decoded, dict):
            yield Issue(line_no, _visible(text), "bad_json",
                        "not a JSON object (an IntelMQ event is one object per line)")
            continue
        event = flatten(decoded)
        address = event.get("source.ip")
        if not isinstance(address, str) or not address.strip():
            yield Issue(line_no, _visible(text), "no_source_ip",
                        "the event has no source.ip (events naming only a domain or URL "
                        "are not hosts we can test)")
            continue
        port_value = event.get("source.port")
        try:
            ip = policy.check_text(address.strip())
            port = _port(str(port_value).strip()) if port_value not in (None, "") else None
        except AddressRejected as exc:
            yield _rejected(line_no, text, exc, address)
            continue
        kind = event_kind(event)
        country = str(event.get("source.geolocation.cc") or "").strip().upper()
        asn_value = event.get("source.asn")
        asn = asn_value if isinstance(asn_value, int) and 0 < asn_value < 2**32 else None
        if asn is None and isinstance(asn_value, str) and asn_value.strip().isdigit():
            asn = int(asn_value.strip()) if len(asn_value.strip()) < 11 else None
        identifier = str(event.get("classification.identifier") or "")
        yield Entry(
            line_no,
            ip,
            f"{ip}|{port or ''}|{kind}|{identifier.lower()}",
            port=port,
            tag=str(event.get("feed.name") or identifier)[:100],
            seen_at=parse_time(event.get("time.source")),
            evidence={key: _evidence_value(value) for key, value in event.items()
                      if key != "source.ip" and key != "raw" and value not in (None, "")},
            country=country if len(country) == 2 and country.isascii() and country.isalpha()
            else "",
            asn=asn,
            kind=kind,
        )
