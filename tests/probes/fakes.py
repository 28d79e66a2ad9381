"""Small misbehaving servers for the probes' edge cases, all on loopback.

The well-behaved ones (open and closed relays and proxies, the tarpit) and the machinery
(`LoopThread`, the listener) are the demo lab's, in devtools/lab.py; only the odd cases that
no demo needs live here. They run on a background event loop (`LoopThread`), because the
code under test starts its own loop in its own thread, exactly as in production.
"""

from __future__ import annotations

import asyncio
import re

from devtools.lab import (  # noqa: F401 (re-exported for the tests)
    LabServer,
    LoopThread,
    accept_source_route_only,
    http_proxy_server,
    relay_everything,
    relay_nothing,
    smtp_server,
    socks4_server,
    socks5_server,
    tarpit,
)

Fake = LabServer


# --- SMTP -------------------------------------------------------------------------------------

def relay_percent_hack_only(rcpt: str, fake: Fake) -> tuple[int, str]:
    if re.fullmatch(r"[^@]+%[^@]+@\[127\.0\.0\.\d+\]", rcpt):
        return 250, "2.1.5 Ok, will forward"
    return 550, "5.1.1 No such user / relay denied"


def accept_local_only(rcpt: str, fake: Fake) -> tuple[int, str]:
    """No recipient validation at all for its own domain: the classic false positive."""
    if "@" not in rcpt.split(":")[-1] or rcpt.endswith(f"@[{fake.host}]"):
        return 250, "2.1.5 Ok"
    return 554, "5.7.1 Relay access denied"


def temporary_failures(rcpt: str, fake: Fake) -> tuple[int, str]:
    return 450, "4.7.1 Greylisted, try again later"


async def drip(reader, writer, fake: Fake) -> None:
    """A continuation line just before each read timeout, forever."""
    while True:
        writer.write(b"220-still thinking\r\n")
        await writer.drain()
        await asyncio.sleep(fake.options.get("every", 0.5))


async def junk(reader, writer, fake: Fake) -> None:
    """Megabytes of garbage without a newline."""
    block = b"\xff\x00junk" * 16384
    for _ in range(fake.options.get("blocks", 64)):
        writer.write(block)
        await writer.drain()
    fake.options["sent_all"] = True


async def junk_lines(reader, writer, fake: Fake) -> None:
    """Garbage that looks like lines but is no protocol at all."""
    writer.write(b"SSH-2.0-OpenSSH_9.2p1\r\n")
    await writer.drain()
    await reader.read(100)


# --- proxies ----------------------------------------------------------------------------------

async def fake_token_proxy(reader, writer, fake: Fake) -> None:
    """A honeypot-ish proxy: says 200 to everything, echoes the request, invents a proof."""
    head = b""
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        head += line
    fake.got(head.decode(errors="replace").splitlines()[0] if head else "")
    body = head + b"sys-canary proof=0123456789abcdef0123456789abcdef\n"
    if head.startswith(b"CONNECT"):
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        head = b""
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            head += line
        body = head + b"sys-canary proof=0123456789abcdef0123456789abcdef\n"
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    await writer.drain()
