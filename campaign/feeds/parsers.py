"""Blocklist feed parsers: physical lines in, host entries and line issues out.

No Django here. Every line is accounted for exactly once: it is a comment/blank line, an
`Entry`, or an `Issue` (rejected with a reason). Duplicates within a file are decided later,
set-based, from `Entry.dedup_key` (the database does that for a million lines at a time).
"""

from __future__ import annotations

import csv
import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime

from campaign.addresses import AddressPolicy, AddressRejected, network_reason, parse_ip
from campaign.feeds.entries import (
    Entry,
    FormatError,
    Issue,
    Parsed,
    _bad_bytes,
    _control_chars,
    _is_comment,
    _port,
    _rejected,
    _too_long,
    _visible,
    _why_not_ascii,
)
from campaign.feeds.intelmq import parse_intelmq_lines
from campaign.feeds.lines import LineTooLong

FORMATS = ("ip", "ipport", "csv", "drop", "netset", "intelmq")

Lines = Iterable[tuple[int, str]]


def parse_ip_lines(lines: Lines, policy: AddressPolicy) -> Iterator[Parsed]:
    check = policy.check_text
    for line_no, raw in lines:
        text = raw.strip()
        if _is_comment(text):
            continue
        if type(raw) is LineTooLong:
            yield _too_long(line_no, raw)
            continue
        if "#" in text:
            text = text.split("#", 1)[0].strip()
        token = text.split(None, 1)[0] if text else text
        try:
            ip = check(token)
        except AddressRejected as exc:
            if _control_chars(raw):
                yield _bad_bytes(line_no, raw)
            else:
                yield _rejected(line_no, raw, exc, token)
            continue
        yield Entry(line_no, ip, ip)


_BRACKETED = re.compile(r"^\[([^\]]+)\]:(\d+)$")
_HOSTPORT = re.compile(r"^([^:\[\]]+):(\d+)$")


def _split_host_port(text: str) -> tuple[str, str]:
    """Return (host, port text) or raise AddressRejected with why the line is not host:port."""
    match = _BRACKETED.match(text) or _HOSTPORT.match(text)
    if match:
        return match.group(1), match.group(2)
    if text.count(":") >= 2 and not text.startswith("["):
        try:
            ipaddress.IPv6Address(text)
        except ValueError:
            raise AddressRejected(
                "unbracketed_ipv6",
                "IPv6 host:port without [brackets] is ambiguous; write [address]:port",
            ) from None
        raise AddressRejected("no_port", "no port (expected [address]:port)")
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise AddressRejected("invalid", "not host:port") from None
    raise AddressRejected("no_port", "no port (expected address:port)")


def parse_ipport_lines(lines: Lines, policy: AddressPolicy) -> Iterator[Parsed]:
    for line_no, raw in lines:
        text = raw.strip()
        if _is_comment(text):
            continue
        if type(raw) is LineTooLong:
            yield _too_long(line_no, raw)
            continue
        if "#" in text:
            text = text.split("#", 1)[0].strip()
        token = text.split(None, 1)[0] if text else text
        try:
            host, port_text = _split_host_port(token)
            port = _port(port_text)
            ip = policy.check_text(host)
        except AddressRejected as exc:
            if _control_chars(raw):
                yield _bad_bytes(line_no, raw)
            else:
                yield _rejected(line_no, raw, exc, token)
            continue
        yield Entry(line_no, ip, f"{ip}|{port}", port=port)


def _network_entries(
    lines: Lines, policy: AddressPolicy, split: Callable[[str], tuple[str, str]]
) -> Iterator[Parsed]:
    for line_no, raw in lines:
        text = raw.strip()
        if _is_comment(text):
            continue
        if type(raw) is LineTooLong:
            yield _too_long(line_no, raw)
            continue
        cidr, tag = split(text)
        content = _visible(text)
        try:
            net = ipaddress.ip_network(cidr, strict=True)
        except ValueError as exc:
            if _control_chars(raw):
                yield _bad_bytes(line_no, raw)
            elif "has host bits set" in str(exc):
                yield Issue(line_no, content, "host_bits", f"host bits set in {cidr} (not a CIDR)")
            else:
                yield Issue(line_no, content, "invalid",
                            "not an IP address or network" + _why_not_ascii(cidr))
            continue
        address = net.network_address
        reason = network_reason(net)
        if reason and not policy.is_allowlisted(address):
            yield Issue(line_no, content, reason[0], reason[1])
            continue
        ip = str(address)
        note = ""
        if net.num_addresses > 1:
            note = (
                f"network {net} ({net.num_addresses} addresses), not a host: "
                "we notify hosts, we do not scan networks"
            )
        yield Entry(line_no, ip, str(net), tag=tag, network_note=note)


def _split_drop(text: str) -> tuple[str, str]:
    cidr, _, tag = text.partition(";")
    return cidr.strip(), tag.strip()[:100]


def _split_netset(text: str) -> tuple[str, str]:
    if "#" in text:
        text = text.split("#", 1)[0]
    parts = text.split()
    return (parts[0] if parts else ""), ""


def parse_drop_lines(lines: Lines, policy: AddressPolicy) -> Iterator[Parsed]:
    return _network_entries(lines, policy, _split_drop)


def parse_netset_lines(lines: Lines, policy: AddressPolicy) -> Iterator[Parsed]:
    return _network_entries(lines, policy, _split_netset)


_CSV_TIMESTAMP_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S")


def _csv_timestamp(text: str) -> datetime | None:
    text = text.strip().removesuffix("+00").removesuffix("+00:00").strip()
    for fmt in _CSV_TIMESTAMP_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def parse_csv_lines(lines: Lines, policy: AddressPolicy) -> Iterator[Parsed]:
    """Shadowserver-style CSV: a header row naming at least `ip`; other columns kept."""
    header: list[str] | None = None
    for line_no, raw in lines:
        if header is None:
            if not raw.strip() or raw.lstrip().startswith("#"):
                continue
            header = [name.strip().lower() for name in next(csv.reader([raw]))]
            if "ip" not in header:
                raise FormatError(f"CSV header on line {line_no} has no 'ip' column")
            continue
        text = raw.strip()
        if _is_comment(text):
            continue
        if type(raw) is LineTooLong:
            yield _too_long(line_no, raw)
            continue
        try:
            row = next(csv.reader([raw]))
        except csv.Error as exc:
            yield Issue(line_no, _visible(text), "bad_csv", f"unreadable CSV row: {exc}")
            continue
        if len(row) != len(header):
            yield Issue(
                line_no, _visible(text), "columns",
                f"{len(row)} columns, header has {len(header)} (row cut short or malformed)",
            )
            continue
        values = dict(zip(header, row, strict=True))
        try:
            ip = policy.check_text(values["ip"].strip())
            port = _port(values["port"].strip()) if values.get("port", "").strip() else None
        except AddressRejected as exc:
            yield _rejected(line_no, text, exc, values["ip"].strip() + values.get("port", ""))
            continue
        asn_text = values.get("asn", "").strip()
        geo = values.get("geo", "").strip().upper()
        yield Entry(
            line_no,
            ip,
            "\x1f".join(row),
            port=port,
            tag=values.get("tag", "").strip()[:100],
            seen_at=_csv_timestamp(values.get("timestamp", "")),
            # No NUL: PostgreSQL's jsonb refuses \u0000 and would fail the whole import.
            evidence={k: v.replace("\x00", "") for k, v in values.items()
                      if v.strip() and k not in ("ip",)},
            country=geo if len(geo) == 2 and geo.isascii() and geo.isalpha() else "",
            asn=int(asn_text)
            if asn_text.isascii() and asn_text.isdigit() and len(asn_text) < 11 else None,
        )


PARSERS: dict[str, Callable[[Lines, AddressPolicy], Iterator[Parsed]]] = {
    "ip": parse_ip_lines,
    "ipport": parse_ipport_lines,
    "csv": parse_csv_lines,
    "drop": parse_drop_lines,
    "netset": parse_netset_lines,
    "intelmq": parse_intelmq_lines,
}

_LOOKS_IPPORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|\d{1,3}(\.\d{1,3}){3}):\d+$")
_LOOKS_CIDR = re.compile(r"^[0-9A-Fa-f:.]+/\d+$")
_LOOKS_DROP = re.compile(r"^[0-9A-Fa-f:.]+/\d+\s*;")
_LOOKS_IP = re.compile(r"^[0-9A-Fa-f:.]+$")


def detect_format(sample: list[str]) -> str:
    """Guess the format from the first lines; raise FormatError when it is not clear."""
    data = [line.strip() for line in sample if line.strip()]
    if not data:
        raise FormatError("the feed has no lines")
    first_data = next((line for line in data if not line.startswith("#")), "")
    if first_data.startswith("{") and '"source' in first_data:
        return "intelmq"
    if first_data.count(",") >= 2:
        header = [name.strip().strip('"').lower() for name in first_data.split(",")]
        if "ip" in header:
            return "csv"
    votes = {"ip": 0, "ipport": 0, "netset": 0, "drop": 0}
    for line in data:
        if line[0] in "#;":
            continue
        token = line.split("#", 1)[0].strip()
        if _LOOKS_DROP.match(token):
            votes["drop"] += 1
        elif _LOOKS_CIDR.match(token.split()[0] if token.split() else token):
            votes["netset"] += 1
        elif _LOOKS_IPPORT.match(token):
            votes["ipport"] += 1
        elif _LOOKS_IP.match(token.split()[0] if token.split() else token):
            votes["ip"] += 1
    total = sum(votes.values())
    if total == 0:
        raise FormatError("no line looks like an address; choose the format explicitly")
    if votes["drop"]:
        return "drop"
    if votes["ipport"] and votes["netset"]:
        raise FormatError("lines look like both ip:port and CIDR; choose the format explicitly")
    if votes["netset"]:
        return "netset"
    if votes["ipport"] * 2 >= total:
        return "ipport"
    if votes["ipport"]:
        raise FormatError("some lines carry ports and most do not; choose the format explicitly")
    return "ip"


def parse(lines: Lines, fmt: str, policy: AddressPolicy) -> Iterator[Parsed]:
    if fmt not in PARSERS:
        raise FormatError(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")
    return PARSERS[fmt](lines, policy)


__all__ = [
    "FORMATS", "Entry", "Issue", "FormatError", "detect_format", "parse", "parse_ip",
]
