"""The outbound-network seam: feed URLs are fetched only from allowed addresses.

Every server here listens on loopback. A guard around `socket.connect` records any attempt
to reach a non-loopback address (and refuses it), so "refused without connecting" is
asserted, not assumed, and a bug can never send a packet off this machine.
"""

from __future__ import annotations

import asyncio
import io
import ipaddress
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from campaign import outbound
from campaign.models import FeedImport, Host
from campaign.outbound import FetchError, TargetRefused, fetch_url_to_file
from tests.conftest import FEEDS

PLAIN = (FEEDS / "plain-ips.txt").read_bytes()


class FeedServer:
    """A tiny HTTP server on a loopback address that records every request it gets."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):  # noqa: N802 - http.server's naming
                outer.requests.append({"path": self.path, "host": self.headers.get("Host"),
                                       "agent": self.headers.get("User-Agent")})
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                if parts.path == "/plain-ips.txt":
                    self._send(200, PLAIN)
                elif parts.path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", query["to"][0])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif parts.path == "/loop":
                    self.send_response(301)
                    self.send_header("Location", "/loop")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif parts.path == "/big":
                    self._send(200, b"8.8.8.8\n" * (int(query["n"][0]) // 8))
                elif parts.path == "/big-undeclared":
                    # No Content-Length: the size is only known by counting while reading.
                    self.send_response(200)
                    self.send_header("Connection", "close")
                    self.end_headers()
                    for _ in range(int(query["n"][0]) // 8192):
                        self.wfile.write(b"8.8.8.8\n" * 1024)
                    self.close_connection = True
                elif parts.path.startswith("/status/"):
                    self._send(int(parts.path.rsplit("/", 1)[1]), b"nope")
                else:
                    self._send(404, b"not found")

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        family = socket.AF_INET6 if ":" in host else socket.AF_INET

        class Server(ThreadingHTTPServer):
            address_family = family
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a client hanging up mid-body (the size cap) is expected here

        self.server = Server((host, 0), Handler)
        self.port = self.server.server_address[1]
        self.base = f"http://{f'[{host}]' if ':' in host else host}:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,),
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server():
    srv = FeedServer("127.0.0.1")
    yield srv
    srv.close()


@pytest.fixture
def second_server():
    srv = FeedServer("127.0.0.2")
    yield srv
    srv.close()


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Record and refuse any connection attempt to a non-loopback address."""
    attempts: list[tuple] = []
    real_connect = socket.socket.connect

    def guarded(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            if not ipaddress.ip_address(address[0]).is_loopback:
                attempts.append(address)
                raise ConnectionRefusedError(f"test guard: no traffic to {address[0]}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    yield attempts
    assert attempts == [], f"something tried to connect off loopback: {attempts}"


def fetch(url: str, max_bytes: int = 10_000_000) -> bytes:
    out = io.BytesIO()
    written = fetch_url_to_file(url, out, max_bytes=max_bytes, timeout=5)
    assert written == len(out.getvalue())
    return out.getvalue()


# --- which targets are allowed -----------------------------------------------------------


def test_a_loopback_url_is_refused_without_any_request_when_nothing_is_allowlisted(
    server, settings
):
    settings.PROBE_ALLOWED_NETWORKS = []
    with pytest.raises(FetchError, match="refusing to connect to 127.0.0.1") as caught:
        fetch(f"{server.base}/plain-ips.txt")
    assert caught.value.permanent
    assert server.requests == []


def test_an_allowlisted_loopback_url_is_fetched(server, settings):
    settings.PROBE_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    assert fetch(f"{server.base}/plain-ips.txt") == PLAIN
    (request,) = server.requests
    assert request["host"] == f"127.0.0.1:{server.port}"
    assert request["agent"].startswith("SecureYourServer/")


@pytest.mark.parametrize("host", ["localhost", "2130706433", "0x7f000001", "127.1"])
def test_names_and_odd_spellings_of_loopback_are_resolved_then_refused(host, server, settings):
    settings.PROBE_ALLOWED_NETWORKS = []
    with pytest.raises(FetchError, match="refusing to connect to 127.0.0.1"):
        fetch(f"http://{host}:{server.port}/plain-ips.txt")
    assert server.requests == []


def test_a_name_is_connected_to_at_its_checked_address_with_its_host_header_kept(
    server, settings
):
    settings.PROBE_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    assert fetch(f"http://localhost:{server.port}/plain-ips.txt") == PLAIN
    assert server.requests[0]["host"] == f"localhost:{server.port}"


def test_a_proxy_from_the_environment_cannot_bypass_the_pinned_address(
    server, second_server, settings, monkeypatch
):
    settings.PROBE_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, second_server.base)
    assert fetch(f"{server.base}/plain-ips.txt") == PLAIN
    assert second_server.requests == []
    assert len(server.requests) == 1


def test_credentials_in_the_url_do_not_leak_into_the_host_header(server, settings):
    settings.PROBE_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    fetch(f"http://user:secret@127.0.0.1:{server.port}/plain-ips.txt")
    assert server.requests[0]["host"] == f"127.0.0.1:{server.port}"


@pytest.mark.parametrize("url", [
    "ftp://127.0.0.1/feed.txt",
    "file:///etc/passwd",
    "gopher://127.0.0.1:70/",
    "http:///no-host",
    "javascript:alert(1)",
])
def test_non_http_schemes_are_refused(url, settings):
    settings.PROBE_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    with pytest.raises(FetchError, match="only http\\(s\\) URLs") as caught:
        fetch(url)
    assert caught.value.permanent


# --- redirects ----------------------------------------------------------------------------


def test_a_redirect_to_a_private_address_is_refused_without_connecting(
    server, settings, loopback_only
):
    settings.PROBE_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    with pytest.raises(FetchError, match="refusing to connect to 10.0.0.1"):
        fetch(f"{server.base}/redirect?to=http://10.0.0.1/feed.txt")
    assert [r["path"] for r in server.requests] == ["/redirect?to=http://10.0.0.1/feed.txt"]
    assert loopback_only == []


def test_a_redirect_to_a_loopback_address_outside_the_allowlist_is_refused(
    server, second_server, settings
):
    settings.PROBE_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    with pytest.raises(FetchError, match="refusing to connect to 127.0.0.2"):
        fetch(f"{server.base}/redirect?to={second_server.base}/plain-ips.txt")
    assert len(server.requests) == 1
    assert second_server.requests == []


def test_a_redirect_to_ipv6_loopback_outside_the_allowlist_is_refused(server, settings):
    settings.PROBE_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    six = FeedServer("::1")
    try:
        with pytest.raises(FetchError, match="refusing to connect to ::1"):
            fetch(f"{server.base}/redirect?to={six.base}/plain-ips.txt")
        assert six.requests == []
    finally:
        six.close()


def test_a_redirect_to_a_file_url_is_refused(server, settings):
    settings.PROBE_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    with pytest.raises(FetchError, match="only http\\(s\\) URLs"):
        fetch(f"{server.base}/redirect?to=file:///etc/passwd")


def test_a_redirect_within_the_allowlist_is_followed(server, second_server, settings):
    settings.PROBE_ALLOWED_NETWORKS = ["127.0.0.1/32", "127.0.0.2/32"]
    assert fetch(f"{server.base}/redirect?to={second_server.base}/plain-ips.txt") == PLAIN
    assert [r["path"] for r in second_server.requests] == ["/plain-ips.txt"]
    assert second_server.requests[0]["host"] == f"127.0.0.2:{second_server.port}"


def test_a_relative_redirect_is_resolved_against_the_current_url(server, settings):
    settings.PROBE_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    assert fetch(f"{server.base}/redirect?to=/plain-ips.txt") == PLAIN


def test_a_redirect_loop_stops_after_five_hops(server, settings):
    settings.PROBE_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    with pytest.raises(FetchError, match="more than 5 redirects"):
        fetch(f"{server.base}/loop")
    assert len(server.requests) == 6


# --- size and status ----------------------------------------------------------------------


def test_a_declared_body_over_the_cap_is_refused_before_reading(server, settings):
    settings.PROBE_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    out = io.BytesIO()
    with pytest.raises(FetchError, match="is 80000 bytes, over the 1000-byte limit"):
        fetch_url_to_file(f"{server.base}/big?n=80000", out, max_bytes=1000)
    assert out.getvalue() == b""


def test_an_undeclared_body_over_the_cap_is_cut_off_while_streaming(server, settings):
    settings.PROBE_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    out = io.BytesIO()
    with pytest.raises(FetchError, match="over the 100000-byte limit") as caught:
        fetch_url_to_file(f"{server.base}/big-undeclared?n=400000", out, max_bytes=100_000)
    assert caught.value.permanent
    assert len(out.getvalue()) <= 100_000


def test_a_body_at_the_cap_is_accepted(server, settings):
    settings.PROBE_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    assert len(fetch(f"{server.base}/big?n=8000", max_bytes=8000)) == 8000


@pytest.mark.parametrize(("status", "permanent"), [(404, True), (410, True), (429, False),
                                                     (503, False)])
def test_http_errors_say_whether_retrying_can_help(status, permanent, server, settings):
    settings.PROBE_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    with pytest.raises(FetchError, match=f"answered HTTP {status}") as caught:
        fetch(f"{server.base}/status/{status}")
    assert caught.value.permanent is permanent


def test_a_closed_port_is_a_temporary_failure(settings):
    settings.PROBE_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    with pytest.raises(FetchError) as caught:
        fetch(f"http://127.0.0.1:{port}/feed.txt")
    assert caught.value.permanent is False


# --- raw connections (probes, WHOIS) ------------------------------------------------------


def test_connect_tcp_refuses_internal_targets_and_reaches_allowlisted_ones(settings, server):
    settings.PROBE_ALLOWED_NETWORKS = []
    with pytest.raises(TargetRefused):
        outbound.connect_tcp("127.0.0.1", server.port, timeout=2)
    with pytest.raises(TargetRefused):
        outbound.connect_tcp("192.168.1.1", 80, timeout=2)
    settings.PROBE_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    with outbound.connect_tcp("127.0.0.1", server.port, timeout=2) as sock:
        assert sock.getpeername() == ("127.0.0.1", server.port)


def test_open_connection_refuses_internal_targets(settings, server):
    settings.PROBE_ALLOWED_NETWORKS = []

    async def attempt():
        await outbound.open_connection("127.0.0.1", server.port, timeout=2)

    with pytest.raises(TargetRefused):
        asyncio.run(attempt())
    assert server.requests == []


# --- through the import command -----------------------------------------------------------


@pytest.mark.django_db
def test_import_feed_refuses_a_loopback_url_and_records_why(campaign, server, settings):
    settings.PROBE_ALLOWED_NETWORKS = []
    with pytest.raises(CommandError, match="failed: refusing to connect to 127.0.0.1"):
        call_command("import_feed", "--campaign", campaign.slug, "--kind", "relay",
                     f"{server.base}/plain-ips.txt", stdout=io.StringIO())
    assert server.requests == []
    feed_import = FeedImport.objects.get()
    assert feed_import.status == FeedImport.FAILED
    assert "refusing to connect" in feed_import.error
    assert not Host.objects.exists()


@pytest.mark.django_db
def test_import_feed_fetches_an_allowlisted_url_with_the_same_counts_as_the_file(
    campaign, server, settings, tmp_path
):
    settings.PROBE_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    settings.MEDIA_ROOT = tmp_path
    out = io.StringIO()
    call_command("import_feed", "--campaign", campaign.slug, "--kind", "relay",
                 f"{server.base}/plain-ips.txt", stdout=out)
    # The allowlist that lets the fetch through also admits the feed's own 127.0.0.1 line.
    assert out.getvalue().strip().splitlines()[-1] == "lines=192 added=147 known=0 rejected=12"
    feed_import = FeedImport.objects.get()
    assert feed_import.feed.url == f"{server.base}/plain-ips.txt"


@pytest.mark.django_db
def test_import_feed_stops_a_url_over_the_size_limit(campaign, server, settings, tmp_path):
    settings.PROBE_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    settings.MEDIA_ROOT = tmp_path
    settings.FEED_MAX_BYTES = 5000
    with pytest.raises(CommandError, match="over the 5000-byte limit"):
        call_command("import_feed", "--campaign", campaign.slug, "--kind", "relay",
                     f"{server.base}/big-undeclared?n=1000000", stdout=io.StringIO())
    assert FeedImport.objects.get().status == FeedImport.FAILED


def test_lab_only_mode_refuses_public_addresses_without_connecting(settings):
    from campaign.outbound import TargetRefused, check_target

    settings.PROBE_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.PROBE_LAB_ONLY = True
    assert str(check_target("127.0.42.1")) == "127.0.42.1"
    with pytest.raises(TargetRefused) as refused:
        check_target("82.44.79.141")
    assert refused.value.code == "lab_only"
    settings.PROBE_LAB_ONLY = False
    assert str(check_target("82.44.79.141")) == "82.44.79.141"
