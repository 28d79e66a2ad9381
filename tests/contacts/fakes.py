"""Loopback stand-ins for the registries: an RDAP HTTP server and port-43 WHOIS servers.

They serve the fixture answers from tests/fixtures (a copy of ../shared/fixtures) in the
registries' own shapes; every registry URL and WHOIS host name in them is rewritten to this process's loopback ports, so
nothing ever leaves 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

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


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # Announce the full length but send only this many bytes, then drop the connection.
    cut_at: int | None = None


class FakeRdap:
    """Serves /bootstrap/ipv4.json, ipv6.json and /<registry>/ip/<addr> like the RIRs."""

    def __init__(self) -> None:
        self.routes: dict[str, Reply] = {}
        self.fallback: Callable[[str], Reply | None] | None = None
        self.requests: list[str] = []
        self.networks: list[tuple] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes; with Nagle on, each response
            # would wait for the client's delayed ACK (40 ms), which no RIR makes us do.
            disable_nagle_algorithm = True

            def do_GET(self):  # noqa: N802 (http.server's naming)
                with fake.lock:
                    fake.requests.append(self.path)
                reply = fake.routes.get(self.path)
                if reply is None and fake.fallback is not None:
                    reply = fake.fallback(self.path)
                if reply is None:
                    reply = Reply(404, (RDAP_DIR / "error-404.json").read_bytes(),
                                  {"Content-Type": "application/rdap+json"})
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                if reply.cut_at is not None:
                    self.send_header("Connection", "close")
                self.end_headers()
                if reply.cut_at is not None:
                    self.wfile.write(reply.body[: reply.cut_at])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(reply.body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)

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
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def count(self, prefix: str = "/") -> int:
        with self.lock:
            return sum(1 for path in self.requests if path.startswith(prefix))


class _WhoisHandler(socketserver.BaseRequestHandler):
    def handle(self):
        fake: FakeWhois = self.server.fake  # type: ignore[attr-defined]
        self.request.settimeout(5)
        data = b""
        while b"\n" not in data and len(data) < 1024:
            chunk = self.request.recv(1024)
            if not chunk:
                break
            data += chunk
        query = data.decode("ascii", "replace").strip()
        with fake.lock:
            fake.queries.append((self.server.registry, query))  # type: ignore[attr-defined]
        answers = fake.answers[self.server.registry]  # type: ignore[attr-defined]
        answer = answers.get(query)
        if answer is None and query.startswith("n + "):
            answer = answers.get(query[4:])
        if answer is None:
            answer = b"%ERROR:101: no entries found\n"
        if callable(answer):
            answer(self.request)
            return
        self.request.sendall(answer)


class _WhoisServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class FakeWhois:
    """One port-43 listener per registry, each answering the fixture files it would."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.queries: list[tuple[str, str]] = []
        self.answers: dict[str, dict[str, object]] = {name: {} for name in WHOIS_REGISTRIES}
        self.servers: dict[str, _WhoisServer] = {}
        for name in WHOIS_REGISTRIES:
            server = _WhoisServer(("127.0.0.1", 0), _WhoisHandler)
            server.fake = self  # type: ignore[attr-defined]
            server.registry = name  # type: ignore[attr-defined]
            self.servers[name] = server

    def addr(self, registry: str) -> str:
        return f"127.0.0.1:{self.servers[registry].server_address[1]}"

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
        for server in self.servers.values():
            threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        for server in self.servers.values():
            server.shutdown()
            server.server_close()

    def count(self, registry: str | None = None) -> int:
        with self.lock:
            return sum(1 for r, _ in self.queries if registry in (None, r))


def endless_answer(sock: socket.socket) -> None:
    """A banner and an inetnum, then remarks for ever (until the client hangs up)."""
    sock.sendall(b"% fake endless server\n\ninetnum: 198.51.100.0 - 198.51.100.255\n")
    try:
        while True:
            sock.sendall(b"remarks:        " + b"x" * 200 + b"\n")
    except OSError:
        return


def silent_answer(sock: socket.socket) -> None:
    """Accept the query and never answer."""
    time.sleep(4)
