"""Small misbehaving servers for the probes' edge cases, all on loopback.

They run on a background event loop (`LoopThread`), because the code under test starts its
own loop in its own thread, exactly as in production.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


class LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Awaitable, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        async def cancel_all():
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        self.run(cancel_all())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Fake"], Awaitable[None]]


@dataclass
class Fake:
    handler: Handler
    host: str = "127.0.0.1"
    port: int = 0
    server: asyncio.Server | None = None
    lines: list[str] = field(default_factory=list)  # every line received, all sessions
    sessions: list[list[str]] = field(default_factory=list)
    options: dict = field(default_factory=dict)
    tasks: list = field(default_factory=list)

    async def start(self) -> Fake:
        async def handle(reader, writer):
            self.tasks.append(asyncio.current_task())
            self.sessions.append([])
            try:
                await self.handler(reader, writer, self)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(handle, self.host, self.port)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self.server:
            self.server.close()
        for task in self.tasks:
            task.cancel()

    def got(self, line: str) -> None:
        self.lines.append(line)
        self.sessions[-1].append(line)


# --- SMTP -------------------------------------------------------------------------------------

def relay_nothing(rcpt: str, fake: Fake) -> tuple[int, str]:
    return 554, "5.7.1 Relay access denied"


def relay_everything(rcpt: str, fake: Fake) -> tuple[int, str]:
    return 250, "2.1.5 Ok"


def relay_percent_hack_only(rcpt: str, fake: Fake) -> tuple[int, str]:
    if re.fullmatch(r"[^@]+%[^@]+@\[127\.0\.0\.\d+\]", rcpt):
        return 250, "2.1.5 Ok, will forward"
    return 550, "5.1.1 No such user / relay denied"


def accept_local_only(rcpt: str, fake: Fake) -> tuple[int, str]:
    """No recipient validation at all for its own domain: the classic false positive."""
    if "@" not in rcpt.split(":")[-1] or rcpt.endswith(f"@[{fake.host}]"):
        return 250, "2.1.5 Ok"
    return 554, "5.7.1 Relay access denied"


def accept_source_route_only(rcpt: str, fake: Fake) -> tuple[int, str]:
    if rcpt.startswith("@["):
        return 250, "2.1.5 Ok"
    return 554, "5.7.1 Relay access denied"


def temporary_failures(rcpt: str, fake: Fake) -> tuple[int, str]:
    return 450, "4.7.1 Greylisted, try again later"


async def smtp_server(reader, writer, fake: Fake) -> None:
    opts = fake.options
    rcpt_policy = opts.get("rcpt", relay_nothing)
    writer.write((opts.get("banner", "220 fake.example ESMTP") + "\r\n").encode())
    if opts.get("close_after_banner"):
        await writer.drain()
        return
    rejects = 0
    while line := await reader.readline():
        text = line.decode("latin-1").rstrip("\r\n")
        fake.got(text)
        verb = text.split(" ", 1)[0].upper()
        if verb == "EHLO":
            writer.write(b"250-fake.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
        elif verb == "HELO":
            writer.write(b"250 fake.example\r\n")
        elif verb == "MAIL":
            writer.write(b"250 2.1.0 Ok\r\n")
        elif verb == "RCPT":
            rcpt = re.match(r"RCPT TO:<(.*)>$", text, re.I).group(1)
            code, reply = rcpt_policy(rcpt, fake)
            if code >= 400:
                rejects += 1
            if opts.get("hang_up_after") and rejects > opts["hang_up_after"]:
                writer.write(b"421 4.7.0 Error: too many errors\r\n")
                await writer.drain()
                return
            writer.write(f"{code} {reply}\r\n".encode())
        elif verb in ("RSET", "NOOP"):
            writer.write(b"250 2.0.0 Ok\r\n")
        elif verb == "DATA":
            writer.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
        elif verb == "QUIT":
            writer.write(b"221 2.0.0 Bye\r\n")
            await writer.drain()
            return
        else:
            writer.write(b"502 5.5.2 Error: command not recognized\r\n")
        await writer.drain()


async def tarpit(reader, writer, fake: Fake) -> None:
    """Accepts, then never says a word."""
    await asyncio.sleep(3600)


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

async def _pipe(reader, writer) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def _tunnel(client_reader, client_writer, host: str, port: int) -> None:
    up_reader, up_writer = await asyncio.open_connection(host, port)
    await asyncio.gather(_pipe(client_reader, up_writer), _pipe(up_reader, client_writer))


async def http_proxy_server(reader, writer, fake: Fake) -> None:
    """An open HTTP proxy: absolute-URI GET forwarded, CONNECT tunnelled."""
    request_line = (await reader.readline()).decode()
    fake.got(request_line.strip())
    headers = []
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        headers.append(line)
    method, target, _version = request_line.split()
    if fake.options.get("deny"):
        writer.write(b"HTTP/1.1 403 Access denied\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        return
    if method == "CONNECT":
        host, port = target.rsplit(":", 1)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await _tunnel(reader, writer, host, int(port))
        return
    match = re.match(r"http://([^/:]+):(\d+)(/.*)", target)
    host, port, path = match.group(1), int(match.group(2)), match.group(3)
    up_reader, up_writer = await asyncio.open_connection(host, port)
    up_writer.write(f"GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\n\r\n".encode())
    await up_writer.drain()
    writer.write(await up_reader.read(65536))
    await writer.drain()
    up_writer.close()


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


async def socks5_server(reader, writer, fake: Fake) -> None:
    greeting = await reader.readexactly(2)
    await reader.readexactly(greeting[1])
    if fake.options.get("auth_required"):
        writer.write(b"\x05\xff")
        await writer.drain()
        return
    writer.write(b"\x05\x00")
    head = await reader.readexactly(4)
    if head[3] == 1:
        host = ".".join(str(b) for b in await reader.readexactly(4))
    else:
        host = (await reader.readexactly((await reader.readexactly(1))[0])).decode()
    port = int.from_bytes(await reader.readexactly(2), "big")
    fake.got(f"CONNECT {host}:{port}")
    if fake.options.get("deny"):
        writer.write(b"\x05\x02\x00\x01\x00\x00\x00\x00\x00\x00")
        await writer.drain()
        return
    writer.write(b"\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x00")
    await writer.drain()
    await _tunnel(reader, writer, host, port)


async def socks4_server(reader, writer, fake: Fake) -> None:
    head = await reader.readexactly(8)
    userid = await reader.readuntil(b"\x00")
    port = int.from_bytes(head[2:4], "big")
    if head[4:7] == b"\x00\x00\x00" and head[7]:
        if fake.options.get("no_4a"):
            writer.write(b"\x00\x5b" + b"\x00" * 6)
            await writer.drain()
            return
        host = (await reader.readuntil(b"\x00"))[:-1].decode()
    else:
        host = ".".join(str(b) for b in head[4:8])
        if fake.options.get("only_4a"):
            fake.got(f"refused {host}:{port}")
            writer.write(b"\x00\x5b" + b"\x00" * 6)
            await writer.drain()
            return
    fake.got(f"CONNECT {host}:{port} user={userid[:-1].decode()}")
    if fake.options.get("deny"):
        writer.write(b"\x00\x5b" + b"\x00" * 6)
        await writer.drain()
        return
    writer.write(b"\x00\x5a" + b"\x00" * 6)
    await writer.drain()
    await _tunnel(reader, writer, host, port)
