"""Loopback stand-ins for the registries: an RDAP HTTP server and port-43 WHOIS servers.

They serve the fixture answers from tests/fixtures (a copy of ../shared/fixtures) in the
registries' own shapes; every registry URL and WHOIS host name in them is rewritten to this
process's loopback ports, so nothing ever leaves 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

from devtools.lab import HttpServer, LoopThread, Reply, WhoisServer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RDAP_DIR = FIXTURES / "rdap"
WHOIS_DIR = FIXTURES / "whois"

RDAP_REGISTRIES = {
    "ripe": "https://rdap.db.ripe.net/",
    "arin": "https://rdap.arin.net/registry/",
    "apnic": "https://rdap.apnic.net/",
    "lacnic": "https://rdap.lacnic.net/rdap/",
    "afrinic": "https://rdap.afrinic.net/rdap/",
}
WHOIS_REGISTRIES = {
    "iana": "whois.iana.org",
    "arin": "whois.arin.net",
    "ripe": "whois.ripe.net",
    "apnic": "whois.apnic.net",
    "lacnic": "whois.lacnic.net",
    "afrinic": "whois.afrinic.net",
}


class FakeRdap:
    """Serves /bootstrap/ipv4.json, ipv6.json and /<registry>/ip/<addr> like the RIRs."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.networks: list[tuple] = []
        self.loop = LoopThread()
        self.http = self.loop.run(HttpServer("127.0.0.1", 0).start())
        self.http.not_found = Reply(404, (RDAP_DIR / "error-404.json").read_bytes(),
                                    {"Content-Type": "application/rdap+json"})
        self.port = self.http.port

    @property
    def routes(self) -> dict[str, Reply]:
        return self.http.routes

    @property
    def requests(self) -> list[str]:
        return self.http.requests

    @property
    def fallback(self) -> Callable[[str], Reply | None] | None:
        return self.http.fallback

    @fallback.setter
    def fallback(self, value: Callable[[str], Reply | None] | None) -> None:
        self.http.fallback = value

    # -- set-up ---------------------------------------------------------------------------

    def base(self, registry: str) -> str:
        return f"http://127.0.0.1:{self.port}/{registry}/"

    @property
    def bootstrap_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bootstrap/"

    def local(self, url: str) -> str:
        for registry, real in RDAP_REGISTRIES.items():
            url = url.replace(real, self.base(registry))
        return url

    def path_of(self, url: str) -> str:
        return self.local(url).split(f"127.0.0.1:{self.port}", 1)[1]

    def load_fixtures(self) -> FakeRdap:
        for name in ("ipv4.json", "ipv6.json"):
            doc = json.loads((RDAP_DIR / "bootstrap" / name).read_text())
            for service in doc["services"]:
                https = [u for u in service[1] if u.startswith("https://")]
                service[1] = [self.local(u) for u in https]
            self.routes[f"/bootstrap/{name}"] = Reply(
                200, json.dumps(doc).encode(), {"Content-Type": "application/json"}
            )
        for entry in json.loads((RDAP_DIR / "responses.json").read_text()):
            url = entry["request"].split(" ", 1)[1]
            if url.startswith("https://data.iana.org/") or "malformed" in (entry["body"] or ""):
                continue
            headers = {k: self.local(v) for k, v in entry["headers"].items()}
            body = (RDAP_DIR / entry["body"]).read_bytes() if entry["body"] else b""
            self.routes[self.path_of(url)] = Reply(entry["status"], body, headers)
            if entry["status"] == 200:
                doc = json.loads(body)
                registry = self.path_of(url).split("/")[1]
                self.networks.append((registry, ipaddress.ip_address(doc["startAddress"]),
                                      ipaddress.ip_address(doc["endAddress"]), body))
        self.fallback = self._by_network
        return self

    def _by_network(self, path: str) -> Reply | None:
        """Any address inside a fixture's network gets that network's answer, as at a RIR."""
        registry, _, rest = path.lstrip("/").partition("/")
        if not rest.startswith("ip/"):
            return None
        try:
            ip = ipaddress.ip_address(unquote(rest[3:]))
        except ValueError:
            return None
        for name, first, last, body in self.networks:
            if name == registry and first.version == ip.version and first <= ip <= last:
                return Reply(200, body, {"Content-Type": "application/rdap+json"})
        return None

    def start(self) -> FakeRdap:
        return self  # already serving: the port had to be known to load the fixtures

    def stop(self) -> None:
        if not self.loop.loop.is_closed():  # some tests stop a registry early
            self.loop.run(self.http.close())
            self.loop.stop()

    def count(self, prefix: str = "/") -> int:
        with self.lock:
            return sum(1 for path in self.requests if path.startswith(prefix))


class FakeWhois:
    """One port-43 listener per registry, each answering the fixture files it would."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.queries: list[tuple[str, str]] = []
        self.answers: dict[str, dict[str, object]] = {name: {} for name in WHOIS_REGISTRIES}
        self.loop = LoopThread()
        self.servers: dict[str, WhoisServer] = {
            name: self.loop.run(
                WhoisServer(self.answers[name], name=name, queries=self.queries).start()
            )
            for name in WHOIS_REGISTRIES
        }

    def addr(self, registry: str) -> str:
        return self.servers[registry].addr

    def localise(self, data: bytes) -> bytes:
        for registry, host in WHOIS_REGISTRIES.items():
            data = data.replace(host.encode(), self.addr(registry).encode())
        return data

    def load_fixtures(self, skip: tuple[str, ...] = ("apnic-error", "ripe-error")) -> FakeWhois:
        for entry in json.loads((WHOIS_DIR / "answers.json").read_text()):
            if entry["file"].startswith(skip):
                continue
            registry = entry["server"].split(".")[1]
            body = self.localise((WHOIS_DIR / entry["file"]).read_bytes())
            # The client sends ARIN's "n + " only to whois.arin.net, not to a loopback port.
            self.answers[registry][entry["query"].removeprefix("n + ")] = body
        return self

    def serve_file(self, registry: str, query: str, filename: str) -> None:
        self.answers[registry][query] = self.localise((WHOIS_DIR / filename).read_bytes())

    def start(self) -> FakeWhois:
        return self  # already serving: the ports had to be known to localise the fixtures

    def stop(self) -> None:
        if not self.loop.loop.is_closed():  # some tests stop a registry early
            for server in self.servers.values():
                self.loop.run(server.close())
            self.loop.stop()

    def count(self, registry: str | None = None) -> int:
        with self.lock:
            return sum(1 for r, _ in self.queries if registry in (None, r))


async def endless_answer(writer: asyncio.StreamWriter) -> None:
    """A banner and an inetnum, then remarks for ever (until the client hangs up)."""
    writer.write(b"% fake endless server\n\ninetnum: 198.51.100.0 - 198.51.100.255\n")
    while not writer.is_closing():
        writer.write(b"remarks:        " + b"x" * 200 + b"\n")
        await writer.drain()


async def silent_answer(writer: asyncio.StreamWriter) -> None:
    """Accept the query and never answer."""
    await asyncio.sleep(4)
