"""The demo lab: a pretend Internet on loopback, so the demo never touches real hosts.

`manage.py run_lab` starts, in one asyncio loop, everything the demo campaign's pipeline
talks to: open and closed SMTP relays, open and closed HTTP and SOCKS5 proxies, a silent
host, the canary, an RDAP server (with its own bootstrap files, which map 127.0.0.0/8 to
itself) and a WHOIS server. Every listener binds a 127.x.y.z address; the lab refuses any
other base, because an open proxy on a public interface would be a real open proxy. The
lab's proxies only ever tunnel to the lab's own addresses (the canary) for the same reason.

The servers are also the test suite's fakes (tests/probes/fakes.py, tests/contacts/fakes.py
import them from here), so what the demo shows is what the tests exercise.

No Django here: the canary key is passed in.
"""

from __future__ import annotations

import asyncio
import http
import ipaddress
import json
import logging
import re
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from probes.verification.canary import CanaryServer

log = logging.getLogger(__name__)

DEFAULT_BASE = "127.0.42"
SMTP_PORT = 2525  # the relay feed lists ip:port; 25 would need root
HTTP_PROXY_PORT = 3128  # the proxy feed lists bare IPs: probes try the common proxy ports
SOCKS_PORT = 1080
CANARY_OCTET, CANARY_PORT = 250, 8025
RDAP_OCTET, RDAP_PORT = 251, 8080
WHOIS_OCTET, WHOIS_PORT = 252, 4343
CANARY_DOMAIN = "canary.lab.example"


class LoopThread:
    """An event loop on a daemon thread, for running lab servers inside another program."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Awaitable, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if self.loop.is_closed():
            return  # stopped already

        async def cancel_all():
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        self.run(cancel_all())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.thread.is_alive():
            self.loop.close()


# --- one TCP listener with a protocol handler ------------------------------------------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "LabServer"], Awaitable[None]]


@dataclass
class LabServer:
    """A TCP listener running `handler` per connection; records what it was sent."""

    handler: Handler
    host: str = "127.0.0.1"
    port: int = 0
    server: asyncio.Server | None = None
    lines: list[str] = field(default_factory=list)  # every line received, all sessions
    sessions: list[list[str]] = field(default_factory=list)
    options: dict = field(default_factory=dict)
    tasks: list = field(default_factory=list)

    async def start(self) -> LabServer:
        async def handle(reader, writer):
            self.tasks.append(asyncio.current_task())
            self.sessions.append([])
            try:
                await self.handler(reader, writer, self)
            except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                pass
            except Exception:
                # A probe may send anything; a lab server that crashes would only spam logs.
                log.debug("lab server %s:%s handler failed", self.host, self.port, exc_info=True)
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
        if self.sessions:
            self.sessions[-1].append(line)


# --- SMTP -------------------------------------------------------------------------------------

RcptPolicy = Callable[[str, LabServer], tuple[int, str]]


def relay_nothing(rcpt: str, server: LabServer) -> tuple[int, str]:
    return 554, "5.7.1 Relay access denied"


def relay_everything(rcpt: str, server: LabServer) -> tuple[int, str]:
    return 250, "2.1.5 Ok"


def accept_source_route_only(rcpt: str, server: LabServer) -> tuple[int, str]:
    """An old MTA that honours source routes (`<@[host]:user@elsewhere>`) and nothing else."""
    if rcpt.startswith("@["):
        return 250, "2.1.5 Ok"
    return 554, "5.7.1 Relay access denied"


async def smtp_server(reader, writer, server: LabServer) -> None:
    """Enough of SMTP for the relay check; RCPT answers come from `options["rcpt"]`.

    Nothing is ever delivered: there is no queue, DATA is acknowledged and forgotten.
    """
    opts = server.options
    rcpt_policy: RcptPolicy = opts.get("rcpt", relay_nothing)
    writer.write((opts.get("banner", "220 fake.example ESMTP") + "\r\n").encode())
    if opts.get("close_after_banner"):
        await writer.drain()
        return
    rejects = 0
    while line := await reader.readline():
        text = line.decode("latin-1").rstrip("\r\n")
        server.got(text)
        verb = text.split(" ", 1)[0].upper()
        if verb == "EHLO":
            writer.write(b"250-fake.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
        elif verb == "HELO":
            writer.write(b"250 fake.example\r\n")
        elif verb == "MAIL":
            writer.write(b"250 2.1.0 Ok\r\n")
        elif verb == "RCPT":
            match = re.match(r"RCPT TO:<(.*)>$", text, re.I)
            if match is None:
                writer.write(b"501 5.5.4 Syntax: RCPT TO:<address>\r\n")
                await writer.drain()
                continue
            code, reply = rcpt_policy(match.group(1), server)
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


async def tarpit(reader, writer, server: LabServer) -> None:
    """Accepts, then never says a word."""
    await asyncio.sleep(3600)


# --- proxies ----------------------------------------------------------------------------------


def upstream_allowed(host: str, server: LabServer) -> bool:
    """Lab proxies tunnel to loopback IP literals only: never a name, never the Internet.

    `options["upstream"]` narrows that to one network (the lab's own /24 in `run_lab`), so
    the demo's open proxies cannot be used to reach other services on the machine either.
    """
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    upstream = server.options.get("upstream")
    return ip.is_loopback and (upstream is None or ip in ipaddress.ip_network(upstream))


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


async def http_proxy_server(reader, writer, server: LabServer) -> None:
    """An open HTTP proxy: absolute-URI GET forwarded, CONNECT tunnelled (`deny`: 403)."""
    request_line = (await reader.readline()).decode("latin-1")
    server.got(request_line.strip())
    while await reader.readline() not in (b"\r\n", b"\n", b""):
        pass  # headers: nothing in them matters to this proxy
    parts = request_line.split()
    if len(parts) != 3:
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        return
    method, target, _version = parts
    if server.options.get("deny"):
        writer.write(b"HTTP/1.1 403 Access denied\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        return
    if method == "CONNECT":
        host, _, port = target.rpartition(":")
        if not upstream_allowed(host, server) or not port.isdigit():
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            return
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await _tunnel(reader, writer, host, int(port))
        return
    match = re.match(r"http://([^/:]+):(\d+)(/.*)", target)
    if match is None or not upstream_allowed(match.group(1), server):
        writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        return
    host, port, path = match.group(1), int(match.group(2)), match.group(3)
    up_reader, up_writer = await asyncio.open_connection(host, port)
    up_writer.write(f"GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\n\r\n".encode())
    await up_writer.drain()
    writer.write(await up_reader.read(65536))
    await writer.drain()
    up_writer.close()


SOCKS4_REFUSED = b"\x00\x5b" + b"\x00" * 6


async def socks5_server(reader, writer, server: LabServer) -> None:
    """A SOCKS5 proxy (`auth_required`, `deny`); a SOCKS4 request gets SOCKS4's refusal."""
    version = (await reader.readexactly(1))[0]
    if version == 4:
        writer.write(SOCKS4_REFUSED)  # a SOCKS5-only server, as Dante is configured often
        await writer.drain()
        return
    methods = (await reader.readexactly(1))[0]
    await reader.readexactly(methods)
    if server.options.get("auth_required"):
        writer.write(b"\x05\xff")
        await writer.drain()
        return
    writer.write(b"\x05\x00")
    head = await reader.readexactly(4)
    if head[3] == 1:
        host = ".".join(str(b) for b in await reader.readexactly(4))
    elif head[3] == 4:
        host = str(ipaddress.IPv6Address(await reader.readexactly(16)))
    else:
        host = (await reader.readexactly((await reader.readexactly(1))[0])).decode("latin-1")
    port = int.from_bytes(await reader.readexactly(2), "big")
    server.got(f"CONNECT {host}:{port}")
    if server.options.get("deny") or not upstream_allowed(host, server):
        writer.write(b"\x05\x02\x00\x01\x00\x00\x00\x00\x00\x00")
        await writer.drain()
        return
    writer.write(b"\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x00")
    await writer.drain()
    await _tunnel(reader, writer, host, port)


async def socks4_server(reader, writer, server: LabServer) -> None:
    """A SOCKS4/4a proxy (`deny`, `no_4a`, `only_4a`)."""
    head = await reader.readexactly(8)
    userid = await reader.readuntil(b"\x00")
    port = int.from_bytes(head[2:4], "big")
    if head[4:7] == b"\x00\x00\x00" and head[7]:
        if server.options.get("no_4a"):
            writer.write(SOCKS4_REFUSED)
            await writer.drain()
            return
        host = (await reader.readuntil(b"\x00"))[:-1].decode("latin-1")
    else:
        host = ".".join(str(b) for b in head[4:8])
        if server.options.get("only_4a"):
            server.got(f"refused {host}:{port}")
            writer.write(SOCKS4_REFUSED)
            await writer.drain()
            return
    server.got(f"CONNECT {host}:{port} user={userid[:-1].decode('latin-1')}")
    if server.options.get("deny") or not upstream_allowed(host, server):
        writer.write(SOCKS4_REFUSED)
        await writer.drain()
        return
    writer.write(b"\x00\x5a" + b"\x00" * 6)
    await writer.drain()
    await _tunnel(reader, writer, host, port)


# --- HTTP (the RDAP registry) -------------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # Announce the full length but send only this many bytes, then drop the connection.
    cut_at: int | None = None


RDAP_NOT_FOUND = Reply(
    404,
    json.dumps({"errorCode": 404, "title": "Not Found",
                "description": ["no network object in the lab for this address"]}).encode(),
    {"Content-Type": "application/rdap+json"},
)


class HttpServer:
    """GET-only HTTP/1.1 with keep-alive: fixed `routes` by path, then `fallback`, else 404."""

    MAX_HEAD = 16 * 1024

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.routes: dict[str, Reply] = {}
        self.fallback: Callable[[str], Reply | None] | None = None
        self.not_found = RDAP_NOT_FOUND
        self.requests: list[str] = []
        self.server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task] = set()

    def answer(self, path: str) -> Reply:
        reply = self.routes.get(path)
        if reply is None and self.fallback is not None:
            reply = self.fallback(path)
        return reply if reply is not None else self.not_found

    async def start(self) -> HttpServer:
        self.server = await asyncio.start_server(self.handle, self.host, self.port,
                                                 limit=self.MAX_HEAD)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.tasks):
            task.cancel()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self.tasks.add(task)
        try:
            while await self.one_request(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ValueError):
            pass
        finally:
            self.tasks.discard(task)
            writer.close()

    async def one_request(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection should end."""
        request_line = await reader.readline()
        if not request_line.strip():
            return False
        keep_alive = True
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "connection" and value.strip().lower() == "close":
                keep_alive = False
        parts = request_line.decode("latin-1").split()
        if len(parts) != 3 or parts[0] not in ("GET", "HEAD"):
            writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                         b"Connection: close\r\n\r\n")
            await writer.drain()
            return False
        path = parts[1]
        self.requests.append(path)
        reply = self.answer(path)
        try:
            phrase = http.HTTPStatus(reply.status).phrase
        except ValueError:
            phrase = "Status"
        head = [f"HTTP/1.1 {reply.status} {phrase}"]
        head += [f"{name}: {value}" for name, value in reply.headers.items()]
        head.append(f"Content-Length: {len(reply.body)}")
        if reply.cut_at is not None or not keep_alive:
            head.append("Connection: close")
        body = b"" if parts[0] == "HEAD" else reply.body
        if reply.cut_at is not None:
            body = body[: reply.cut_at]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()
        return keep_alive and reply.cut_at is None


# --- WHOIS (port 43) ----------------------------------------------------------------------

WhoisAnswer = bytes | Callable[[asyncio.StreamWriter], Awaitable[None]]
WHOIS_NOT_FOUND = b"%ERROR:101: no entries found\n"


class WhoisServer:
    """Answers one query line per connection from `answers` (bytes, or a coroutine that
    writes to the client itself), else `fallback(query)`, else "no entries found"."""

    def __init__(
        self,
        answers: dict[str, WhoisAnswer] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str = "whois",
        queries: list[tuple[str, str]] | None = None,
    ) -> None:
        self.answers = answers if answers is not None else {}
        self.fallback: Callable[[str], bytes | None] | None = None
        self.host = host
        self.port = port
        self.name = name
        self.queries = queries if queries is not None else []
        self.server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task] = set()

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self) -> WhoisServer:
        self.server = await asyncio.start_server(self.handle, self.host, self.port)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.tasks):
            task.cancel()

    def answer(self, query: str) -> WhoisAnswer:
        answer = self.answers.get(query)
        if answer is None and query.startswith("n + "):
            answer = self.answers.get(query[4:])
        if answer is None and self.fallback is not None:
            answer = self.fallback(query)
        return answer if answer is not None else WHOIS_NOT_FOUND

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self.tasks.add(task)
        try:
            data = b""
            async with asyncio.timeout(5):
                while b"\n" not in data and len(data) < 1024:
                    chunk = await reader.read(1024)
                    if not chunk:
                        break
                    data += chunk
            query = data.decode("ascii", "replace").strip()
            self.queries.append((self.name, query))
            answer = self.answer(query)
            if callable(answer):
                await answer(writer)
                return
            writer.write(answer)
            await writer.drain()
        except (ConnectionError, TimeoutError):
            pass
        finally:
            self.tasks.discard(task)
            writer.close()


# --- the lab's hosts and networks ----------------------------------------------------------


@dataclass(frozen=True)
class LabNetwork:
    """A pretend provider: a /28 of the lab base, its country and its abuse desk."""

    first: int  # last octets of the range
    last: int
    registry: str  # the shape its RDAP answer takes: ripe, apnic, lacnic, arin; whois: none
    country: str
    name: str
    organisation: str
    abuse_email: str


@dataclass(frozen=True)
class LabHost:
    octet: int
    kind: str  # relay | proxy: which demo feed lists it
    what: str  # for people: what `run_lab` prints
    handler: Handler | None  # None: nothing listens
    port: int
    options: tuple[tuple[str, object], ...] = ()
    verdict: str = ""  # what a probe run should conclude


NETWORKS: tuple[LabNetwork, ...] = (
    LabNetwork(16, 31, "ripe", "DE", "LABORNETZ-BERLIN", "Labornetz Berlin GmbH",
               "abuse@labornetz-berlin.example"),
    LabNetwork(32, 47, "ripe", "FR", "RESEAU-LABO-LYON", "Réseau Labo Lyon SAS",
               "abuse@reseau-labo-lyon.example"),
    LabNetwork(48, 63, "apnic", "JP", "LABNET-TOKYO", "Labnet Tokyo K.K.",
               "abuse@labnet-tokyo.example"),
    LabNetwork(64, 79, "lacnic", "BR", "LABORATORIO-SP", "Laboratório Rede São Paulo Ltda",
               "abuse@laboratorio-sp.example"),
    LabNetwork(80, 95, "ripe", "ES", "RED-LABORATORIO-MAD", "Red Laboratorio Madrid S.L.",
               "abuse@red-laboratorio.example"),
    LabNetwork(96, 111, "arin", "US", "LAB-ISP-NET", "Lab ISP Inc.",
               "abuse@lab-isp.example"),
    # Missing from RDAP (404): found through the WHOIS fallback.
    LabNetwork(112, 127, "whois", "IT", "RETE-LABORATORIO-MI", "Rete Laboratorio Milano S.r.l.",
               "abuse@rete-laboratorio.example"),
)

OPEN, NOT_OPEN, UNREACHABLE = "open", "not_open", "unreachable"

HOSTS: tuple[LabHost, ...] = (
    LabHost(17, "relay", "open SMTP relay", smtp_server, SMTP_PORT,
            (("rcpt", relay_everything),), OPEN),
    LabHost(18, "relay", "closed SMTP server", smtp_server, SMTP_PORT,
            (("rcpt", relay_nothing),), NOT_OPEN),
    LabHost(33, "relay", "open SMTP relay", smtp_server, SMTP_PORT,
            (("rcpt", relay_everything),), OPEN),
    LabHost(34, "relay", "silent host (accepts, never answers)", tarpit, SMTP_PORT,
            (), UNREACHABLE),
    LabHost(49, "relay", "open SMTP relay", smtp_server, SMTP_PORT,
            (("rcpt", relay_everything),), OPEN),
    LabHost(50, "relay", "nothing listens (connection refused)", None, SMTP_PORT,
            (), UNREACHABLE),
    LabHost(97, "relay", "SMTP relay open through source routes only", smtp_server, SMTP_PORT,
            (("rcpt", accept_source_route_only),), OPEN),
    LabHost(113, "relay", "open SMTP relay", smtp_server, SMTP_PORT,
            (("rcpt", relay_everything),), OPEN),
    LabHost(65, "proxy", "open SOCKS5 proxy", socks5_server, SOCKS_PORT, (), OPEN),
    LabHost(66, "proxy", "closed SOCKS5 proxy (authentication required)", socks5_server,
            SOCKS_PORT, (("auth_required", True),), NOT_OPEN),
    LabHost(81, "proxy", "open HTTP proxy", http_proxy_server, HTTP_PROXY_PORT, (), OPEN),
    LabHost(82, "proxy", "closed HTTP proxy (403 to everyone)", http_proxy_server,
            HTTP_PROXY_PORT, (("deny", True),), NOT_OPEN),
)


def check_base(base: str) -> str:
    """`127.x.y` (three octets): the lab only ever listens on loopback."""
    parts = base.strip().strip(".").split(".")
    if len(parts) != 3 or not all(p.isdigit() and int(p) < 256 for p in parts):
        raise ValueError(f"bind base {base!r} is not three octets like {DEFAULT_BASE}")
    canonical = ".".join(str(int(p)) for p in parts)
    if not ipaddress.ip_address(canonical + ".1").is_loopback:
        raise ValueError(f"bind base {base!r} is not loopback (127.x.y): the lab runs open "
                         "proxies and relays, which must never be reachable from a network")
    return canonical


def network_of(octet: int) -> LabNetwork | None:
    return next((n for n in NETWORKS if n.first <= octet <= n.last), None)


def relay_feed(base: str = DEFAULT_BASE) -> str:
    """The relay feed (ip:port) of the lab at `base`."""
    lines = ["# Demo lab: SMTP servers on loopback (manage.py run_lab). Format ip:port."]
    lines += [f"{base}.{h.octet}:{h.port}" for h in HOSTS if h.kind == "relay"]
    return "\n".join(lines) + "\n"


def proxy_feed(base: str = DEFAULT_BASE) -> str:
    """The proxy feed (bare IPs: probes try the usual proxy ports) of the lab at `base`."""
    lines = ["# Demo lab: proxies on loopback (manage.py run_lab). One address per line."]
    lines += [f"{base}.{h.octet}" for h in HOSTS if h.kind == "proxy"]
    return "\n".join(lines) + "\n"


# --- registry answers ----------------------------------------------------------------------


def _vcard(*props: list) -> list:
    return ["vcard", [["version", {}, "text", "4.0"], *props]]


def _entity(handle: str, roles: list[str], name: str, *, kind: str = "group",
            email: str = "", country: str = "", entities: list | None = None) -> dict:
    props: list = [["fn", {}, "text", name], ["kind", {}, "text", kind]]
    if country:
        props.append(["adr", {"label": f"Lab Street 1\n{country}"}, "text",
                      ["", "", "Lab Street 1", "", "", "", country]])
    if email:
        props.append(["email", {}, "text", email])
    entity = {"objectClassName": "entity", "handle": handle, "roles": roles,
              "vcardArray": _vcard(*props)}
    if entities:
        entity["entities"] = entities
    return entity


def rdap_document(net: LabNetwork, base: str) -> dict:
    """The `ip network` answer for `net`, in the shape its pretend registry uses."""
    start, end = f"{base}.{net.first}", f"{base}.{net.last}"
    tag = net.country
    doc: dict = {
        "rdapConformance": ["rdap_level_0", "cidr0"],
        "objectClassName": "ip network",
        "handle": f"{start} - {end}",
        "startAddress": start,
        "endAddress": end,
        "ipVersion": "v4",
        "name": net.name,
        "type": "ASSIGNED PA",
        "cidr0_cidrs": [{"v4prefix": start, "length": 28}],
        "status": ["active"],
        "notices": [{"title": "Demo lab", "description": [
            "Served by manage.py run_lab on loopback. Not a real registry."]}],
    }
    abuse = _entity(f"LAB-ABUSE-{tag}", ["abuse"], f"{net.organisation} abuse desk",
                    email=net.abuse_email)
    noc = _entity(f"LAB-NOC-{tag}", ["administrative", "technical"],
                  f"{net.organisation} NOC", email=net.abuse_email.replace("abuse@", "noc@"))
    if net.registry == "arin":
        # ARIN: no country on the network; the POCs hang below the registrant organisation.
        doc["handle"] = f"NET-LAB-{tag}"
        doc["entities"] = [_entity(f"LAB-ORG-{tag}", ["registrant"], net.organisation,
                                   kind="org", country=net.country, entities=[abuse, noc])]
    elif net.registry == "lacnic":
        # LACNIC: no `country` member; the registrant's structured address carries it.
        doc["entities"] = [_entity(f"LAB-ORG-{tag}", ["registrant"], net.organisation,
                                   kind="org", country=net.country), noc, abuse]
    else:  # ripe, apnic
        doc["country"] = net.country
        doc["entities"] = [
            _entity(f"LAB-MNT-{tag}", ["registrant"], f"LAB-MNT-{tag}", kind="individual"),
            _entity(f"ORG-LAB-{tag}", ["registrant"], net.organisation, kind="org",
                    country=net.country),
            noc, abuse,
        ]
    return doc


def whois_text(net: LabNetwork, base: str) -> bytes:
    """A RIPE-style answer (inetnum, organisation, abuse role) for `net`."""
    tag = net.country
    return (
        "% Demo lab WHOIS (manage.py run_lab, loopback only). Not a real registry.\n\n"
        f"inetnum:        {base}.{net.first} - {base}.{net.last}\n"
        f"netname:        {net.name}\n"
        f"country:        {net.country}\n"
        f"org:            ORG-LAB-{tag}\n"
        f"admin-c:        LAB-NOC-{tag}\n"
        f"tech-c:         LAB-NOC-{tag}\n"
        f"abuse-c:        LAB-ABUSE-{tag}\n"
        "status:         ASSIGNED PA\n"
        "source:         LAB\n\n"
        f"organisation:   ORG-LAB-{tag}\n"
        f"org-name:       {net.organisation}\n"
        f"country:        {net.country}\n"
        f"abuse-c:        LAB-ABUSE-{tag}\n\n"
        f"role:           {net.organisation} abuse desk\n"
        f"nic-hdl:        LAB-ABUSE-{tag}\n"
        f"abuse-mailbox:  {net.abuse_email}\n"
    ).encode()


# --- the lab -------------------------------------------------------------------------------


class Lab:
    """Every lab listener at `base`.x; start() and close() on the caller's event loop."""

    def __init__(self, canary_key: bytes, base: str = DEFAULT_BASE) -> None:
        self.base = check_base(base)
        self.canary = CanaryServer(canary_key, self.address(CANARY_OCTET), CANARY_PORT)
        self.rdap = HttpServer(self.address(RDAP_OCTET), RDAP_PORT)
        self.whois = WhoisServer(host=self.address(WHOIS_OCTET), port=WHOIS_PORT, name="lab")
        self.servers = [
            LabServer(h.handler, host=self.address(h.octet), port=h.port,
                      options={**dict(h.options), "upstream": self.network})
            for h in HOSTS if h.handler is not None
        ]
        self._prepare_registries()

    def address(self, octet: int) -> str:
        return f"{self.base}.{octet}"

    @property
    def network(self) -> str:
        """The lab's addresses: `base`.0/24 (every listener and every demo feed host)."""
        return f"{self.base}.0/24"

    @property
    def rdap_base_url(self) -> str:
        return f"http://{self.address(RDAP_OCTET)}:{RDAP_PORT}/rdap/"

    @property
    def bootstrap_url(self) -> str:
        return f"http://{self.address(RDAP_OCTET)}:{RDAP_PORT}/bootstrap/"

    def environment(self) -> dict[str, str]:
        """The settings that point the product at this lab (what bin/dev exports)."""
        return {
            # The lab's own /24, not all of loopback: a feed line 127.0.0.1 must be refused,
            # not probed on this machine's own mail and proxy ports.
            "PROBE_ALLOWED_NETWORKS": self.network,
            "PROBE_CANARY_ADDR": f"{self.address(CANARY_OCTET)}:{CANARY_PORT}",
            "PROBE_CANARY_DOMAIN": CANARY_DOMAIN,
            "RDAP_BOOTSTRAP_URL": self.bootstrap_url,
            "WHOIS_IANA_SERVER": f"{self.address(WHOIS_OCTET)}:{WHOIS_PORT}",
        }

    def _prepare_registries(self) -> None:
        def bootstrap(cidr: str) -> Reply:
            body = json.dumps({
                "description": "Demo lab RDAP bootstrap: loopback is served by the lab",
                "publication": "2026-01-01T00:00:00Z",
                "version": "1.0",
                "services": [[[cidr], [self.rdap_base_url]]],
            }).encode()
            return Reply(200, body, {"Content-Type": "application/json"})

        # The whole of loopback, so no lab address is ever looked up at a real registry.
        self.rdap.routes["/bootstrap/ipv4.json"] = bootstrap("127.0.0.0/8")
        self.rdap.routes["/bootstrap/ipv6.json"] = bootstrap("::1/128")
        self.rdap.fallback = self._rdap_answer
        self.whois.fallback = self._whois_answer

    def _lab_network(self, text: str) -> LabNetwork | None:
        try:
            ip = ipaddress.ip_address(text.strip())
        except ValueError:
            return None
        prefix, _, last = str(ip).rpartition(".")
        return network_of(int(last)) if prefix == self.base else None

    def _rdap_answer(self, path: str) -> Reply | None:
        if not path.startswith("/rdap/ip/"):
            return None
        net = self._lab_network(path.removeprefix("/rdap/ip/"))
        if net is None or net.registry == "whois":
            return None  # 404
        body = json.dumps(rdap_document(net, self.base), ensure_ascii=False).encode("utf-8")
        return Reply(200, body, {"Content-Type": "application/rdap+json"})

    def _whois_answer(self, query: str) -> bytes | None:
        net = self._lab_network(query.removeprefix("n + "))
        return whois_text(net, self.base) if net is not None else None

    async def start(self) -> Lab:
        started: list = []
        try:
            for server in (self.canary, self.rdap, self.whois, *self.servers):
                await server.start()
                started.append(server)
        except OSError:
            for server in started:
                await server.close()
            raise
        return self

    async def close(self) -> None:
        for server in (self.canary, self.rdap, self.whois, *self.servers):
            await server.close()

    def describe(self) -> list[str]:
        """One line per listener: `ADDRESS:PORT what`."""
        lines = [
            f"{self.address(CANARY_OCTET)}:{CANARY_PORT} canary",
            f"{self.address(RDAP_OCTET)}:{RDAP_PORT} RDAP (bootstrap {self.bootstrap_url})",
            f"{self.address(WHOIS_OCTET)}:{WHOIS_PORT} WHOIS",
        ]
        for host in HOSTS:
            net = network_of(host.octet)
            where = f" [{net.country} {net.organisation}]" if net else ""
            lines.append(f"{self.address(host.octet)}:{host.port} {host.kind}: {host.what}"
                         f" → {host.verdict}{where}")
        return lines
