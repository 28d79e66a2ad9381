"""Open-proxy checks: HTTP (absolute-URI GET and CONNECT), SOCKS4/4a, SOCKS5 without auth.

Each asks the proxy to reach the agency's canary with a fresh nonce and judges the proxy
open only if the canary's proof for that nonce (an HMAC the proxy cannot compute) comes back.
A proxy that answers "200 OK" with its own page, or echoes our request, stays not_open.

The SOCKS handshakes are a few bytes each and written here rather than through python-socks,
because every byte must go into the transcript and every connection through the outbound
seam (`Session.connect`), with our bounded, timed reads.
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
import struct

from probes.verification.base import (
    ERROR,
    HTTP_PROXY,
    NOT_OPEN,
    OPEN,
    SOCKS4,
    SOCKS5,
    UNREACHABLE,
    CheckOutcome,
    ProbeConfig,
    ProbeFailure,
    Session,
    Transcript,
    canary_proof,
    overall_verdict,
)

MAX_HEADERS = 16 * 1024

SOCKS4_REPLIES = {0x5A: "granted", 0x5B: "rejected or failed", 0x5C: "identd unreachable",
                  0x5D: "identd mismatch"}
SOCKS5_REPLIES = {0: "succeeded", 1: "general failure", 2: "not allowed by ruleset",
                  3: "network unreachable", 4: "host unreachable", 5: "connection refused",
                  6: "TTL expired", 7: "command not supported", 8: "address type not supported"}


def canary_netloc(config: ProbeConfig) -> str:
    host = config.canary_host
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{config.canary_port}"


def canary_request(config: ProbeConfig, nonce: str, *, absolute: bool) -> bytes:
    netloc = canary_netloc(config)
    target = f"http://{netloc}/t/{nonce}" if absolute else f"/t/{nonce}"
    return (
        f"GET {target} HTTP/1.1\r\nHost: {netloc}\r\nUser-Agent: SecureYourServer-probe\r\n"
        "Accept: text/plain\r\nConnection: close\r\n\r\n"
    ).encode("ascii")


def _require_canary(config: ProbeConfig) -> None:
    if not config.has_canary:
        raise ProbeFailure(ERROR, "no canary configured (PROBE_CANARY_ADDR and a key)")


async def _fetch_proof(session: Session, config: ProbeConfig, *, absolute: bool) -> bool:
    """Ask for a fresh nonce (through the proxy or a tunnel) and check the canary's proof."""
    nonce = secrets.token_hex(16)
    await session.send(canary_request(config, nonce, absolute=absolute))
    body = await session.read_until_close(what="the canary's answer")
    proof = canary_proof(config.canary_key, nonce).encode("ascii")
    found = proof in body
    session.t.note("canary proof received" if found else "canary proof NOT in the answer")
    return found


async def _read_http_head(session: Session) -> tuple[int, bytes]:
    """Status code and head of an HTTP response, read line by line with a size cap."""
    head = b""
    status_line = await session.readline("an HTTP status line")
    parts = status_line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise ProbeFailure(ERROR, f"not an HTTP response: {status_line[:80]!r}")
    head += status_line
    while True:
        line = await session.readline("HTTP headers")
        head += line
        if line in (b"\r\n", b"\n"):
            return int(parts[1]), head
        if len(head) > MAX_HEADERS:
            raise ProbeFailure(ERROR, f"HTTP headers longer than {MAX_HEADERS} bytes")


async def _http_get(ip: str, port: int, config: ProbeConfig, t: Transcript) -> str:
    session = Session(ip, port, config, t)
    try:
        await session.connect()
        nonce = secrets.token_hex(16)
        await session.send(canary_request(config, nonce, absolute=True))
        status, _head = await _read_http_head(session)
        body = await session.read_until_close(what="the response body")
        if canary_proof(config.canary_key, nonce).encode("ascii") in body:
            t.note("canary proof received through GET")
            return OPEN
        t.note(f"GET answered {status} without the canary proof")
        return NOT_OPEN
    finally:
        await session.close()


async def _http_connect(ip: str, port: int, config: ProbeConfig, t: Transcript) -> str:
    session = Session(ip, port, config, t)
    try:
        await session.connect()
        netloc = canary_netloc(config)
        await session.send(f"CONNECT {netloc} HTTP/1.1\r\nHost: {netloc}\r\n\r\n".encode())
        status, _head = await _read_http_head(session)
        if status != 200:
            return NOT_OPEN
        return OPEN if await _fetch_proof(session, config, absolute=False) else NOT_OPEN
    finally:
        await session.close()


async def http_proxy(ip: str, port: int, config: ProbeConfig, t: Transcript) -> CheckOutcome:
    """Absolute-URI GET, then CONNECT (a tunnel to any port means mail could go through it)."""
    _require_canary(config)
    out = CheckOutcome(check=HTTP_PROXY, port=port)
    opened: list[str] = []
    verdicts: dict[str, str] = {}
    errors: list[str] = []
    for name, attempt in (("get", _http_get), ("connect", _http_connect)):
        try:
            verdicts[name] = await attempt(ip, port, config, t)
        except ProbeFailure as exc:
            t.note(f"{name}: {exc.message}")
            verdicts[name] = exc.verdict
            errors.append(f"{name}: {exc.message}")
            out.connect_failed = exc.stage == "connect"
            if exc.verdict == UNREACHABLE:
                break  # nothing listens, or nothing answers: CONNECT would wait just the same
        if verdicts[name] == OPEN:
            opened.append(name)
    out.details = {"attempts": verdicts}
    if opened:
        out.verdict, out.variant = OPEN, ",".join(opened)
    else:
        out.verdict = overall_verdict(verdicts.values())
        out.error = "; ".join(errors)[:500]
    return out


def _canary_ipv4(config: ProbeConfig) -> bytes:
    try:
        address = ipaddress.ip_address(config.canary_host)
    except ValueError:
        # The canary is ours, not a probe target: resolving its name is not probe traffic.
        address = ipaddress.ip_address(
            socket.getaddrinfo(config.canary_host, None, socket.AF_INET)[0][4][0]
        )
    if address.version != 4:
        raise ProbeFailure(ERROR, "SOCKS4 needs an IPv4 canary address")
    return address.packed


async def _socks4_once(ip: str, port: int, config: ProbeConfig, t: Transcript,
                       variant: str) -> str:
    session = Session(ip, port, config, t)
    try:
        await session.connect()
        if variant == "socks4a":
            # 0.0.0.x with x != 0 tells a 4a server to resolve the name that follows.
            request = (struct.pack(">BBH", 4, 1, config.canary_port) + b"\x00\x00\x00\x01"
                       + b"sys\x00" + config.canary_host.encode("idna") + b"\x00")
        else:
            request = (struct.pack(">BBH", 4, 1, config.canary_port) + _canary_ipv4(config)
                       + b"sys\x00")
        await session.send(request, show=f"SOCKS4 CONNECT {variant} {request.hex(' ')}")
        reply = await session.readexactly(8, "a SOCKS4 reply")
        if reply[0] != 0:
            raise ProbeFailure(ERROR, f"not a SOCKS4 reply: {reply.hex(' ')}")
        t.note(f"SOCKS4 reply {reply[1]:#x} {SOCKS4_REPLIES.get(reply[1], 'unknown')}")
        if reply[1] != 0x5A:
            return NOT_OPEN
        return OPEN if await _fetch_proof(session, config, absolute=False) else NOT_OPEN
    finally:
        await session.close()


async def socks4(ip: str, port: int, config: ProbeConfig, t: Transcript) -> CheckOutcome:
    _require_canary(config)
    out = CheckOutcome(check=SOCKS4, port=port)
    verdicts: dict[str, str] = {}
    errors: list[str] = []
    for variant in ("socks4", "socks4a"):
        try:
            verdicts[variant] = await _socks4_once(ip, port, config, t, variant)
        except ProbeFailure as exc:
            verdicts[variant] = exc.verdict
            errors.append(f"{variant}: {exc.message}")
            t.note(f"{variant}: {exc.message}")
            out.connect_failed = exc.stage == "connect"
            break  # silent, closed or garbage: the 4a form will not fare better
        if verdicts[variant] == OPEN:
            out.verdict, out.variant = OPEN, variant
            break
    if out.verdict != OPEN:
        out.verdict = overall_verdict(verdicts.values())
        out.error = "; ".join(errors)[:500]
    out.details = {"attempts": verdicts}
    return out


async def socks5(ip: str, port: int, config: ProbeConfig, t: Transcript) -> CheckOutcome:
    _require_canary(config)
    out = CheckOutcome(check=SOCKS5, port=port)
    session = Session(ip, port, config, t)
    try:
        await session.connect()
        await session.send(b"\x05\x01\x00", show="SOCKS5 greeting 05 01 00 (no auth)")
        greeting = await session.readexactly(2, "a SOCKS5 method choice")
        if greeting[0] != 5:
            raise ProbeFailure(ERROR, f"not a SOCKS5 reply: {greeting.hex(' ')}")
        if greeting[1] != 0:
            t.note("no-auth method refused")
            out.verdict, out.error = NOT_OPEN, "authentication required"
            return out
        try:
            address = ipaddress.ip_address(config.canary_host)
            atyp = b"\x01" if address.version == 4 else b"\x04"
            dest = atyp + address.packed
        except ValueError:
            name = config.canary_host.encode("idna")
            dest = b"\x03" + bytes([len(name)]) + name
        request = b"\x05\x01\x00" + dest + struct.pack(">H", config.canary_port)
        await session.send(request, show=f"SOCKS5 CONNECT {request.hex(' ')}")
        head = await session.readexactly(4, "a SOCKS5 reply")
        if head[0] != 5:
            raise ProbeFailure(ERROR, f"not a SOCKS5 reply: {head.hex(' ')}")
        t.note(f"SOCKS5 reply {head[1]} {SOCKS5_REPLIES.get(head[1], 'unknown')}")
        if head[1] != 0:
            out.verdict, out.error = NOT_OPEN, f"CONNECT refused: {SOCKS5_REPLIES.get(head[1])}"
            return out
        if head[3] == 1:
            await session.readexactly(4 + 2, "the bound address")
        elif head[3] == 4:
            await session.readexactly(16 + 2, "the bound address")
        elif head[3] == 3:
            size = await session.readexactly(1, "the bound name length")
            await session.readexactly(size[0] + 2, "the bound name")
        else:
            raise ProbeFailure(ERROR, f"bad SOCKS5 address type {head[3]}")
        if await _fetch_proof(session, config, absolute=False):
            out.verdict, out.variant = OPEN, "socks5"
        else:
            out.verdict, out.error = NOT_OPEN, "tunnel did not reach the canary"
        return out
    finally:
        await session.close()
