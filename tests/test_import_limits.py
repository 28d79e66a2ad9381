"""Feed imports cannot exhaust disk, memory or workers (issue 14, point 2).

Every server here is a real HTTP server on loopback started by the test; the loopback guard
of tests/test_outbound.py refuses (and fails the test on) any connection off this machine.
"""

from __future__ import annotations

import functools
import gzip
import io
import threading
import tracemalloc
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadhandler import FileUploadHandler
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from campaign.imports import create_import, import_dir, run_import
from campaign.models import FeedImport, Host
from campaign.outbound import FetchError, content_codings, fetch_url_to_file
from tests.conftest import FEEDS
from tests.test_outbound import loopback_only  # noqa: F401 (autouse: nothing leaves loopback)

PLAIN = (FEEDS / "plain-ips.txt").read_bytes()
BOMB_DECODED = 128 * 1024 * 1024


@functools.cache
def stacked_bomb() -> bytes:
    """128 MiB of zeros, gzipped twice: about 1,700 bytes on the wire."""
    inner = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 20)
    once = b"".join(inner.compress(block) for _ in range(BOMB_DECODED >> 20)) + inner.flush()
    return gzip.compress(once, 9)


class SlowServer:
    """Loopback HTTP server: encoded bodies, bombs and servers that never hurry."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.stop = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802 - http.server's naming
                outer.requests.append(dict(self.headers))
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if parts.path == "/encoded":
                    body = PLAIN
                    codings = [c for c in query.get("as", "").split(",") if c]
                    for coding in codings:
                        if coding == "gzip":
                            body = gzip.compress(body)
                        elif coding == "deflate":
                            body = zlib.compress(body)
                        elif coding == "raw-deflate":
                            squeeze = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
                            body = squeeze.compress(body) + squeeze.flush()
                    if query.get("truncate"):
                        body = body[: len(body) // 2]
                    names = ", ".join("deflate" if c == "raw-deflate" else c for c in codings)
                    self._send(body, {"Content-Encoding": query.get("header", names)})
                elif parts.path == "/bomb":
                    self._send(stacked_bomb(), {"Content-Encoding": "gzip, gzip"})
                elif parts.path == "/garbage":
                    self._send(b"this is not,a csv,with an ip column\n", {})
                elif parts.path == "/trickle":
                    # One line every 0.2 s, with no length: only a deadline ends it early.
                    self.send_response(200)
                    self.send_header("Connection", "close")
                    self.end_headers()
                    for _ in range(int(query.get("lines", "40"))):
                        if outer.stop.wait(0.2):
                            break
                        try:
                            self.wfile.write(b"8.8.8.8\n")
                            self.wfile.flush()
                        except OSError:
                            break
                    self.close_connection = True
                elif parts.path == "/trickle-headers":
                    # The headers themselves never end in time: per-read timeouts never fire.
                    self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                    for n in range(40):
                        if outer.stop.wait(0.2):
                            break
                        try:
                            self.wfile.write(f"X-Slow-{n}: 1\r\n".encode())
                            self.wfile.flush()
                        except OSError:
                            break
                    else:
                        self.wfile.write(b"Content-Length: 8\r\n\r\n8.8.8.8\n")
                    self.close_connection = True
                else:
                    self._send(b"not found", {}, status=404)

            def _send(self, body: bytes, headers: dict, status: int = 200) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # the client hanging up (a cap or the deadline) is the point

        self.server = Server(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,),
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slow(settings, tmp_path):
    settings.PROBE_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    settings.MEDIA_ROOT = tmp_path / "media"
    srv = SlowServer()
    yield srv
    srv.close()


def fetch(url: str, **kwargs) -> bytes:
    out = io.BytesIO()
    fetch_url_to_file(url, out, **{"max_bytes": 10_000_000, "timeout": 5, **kwargs})
    return out.getvalue()


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def import_feed(*args: str) -> str:
    out = io.StringIO()
    call_command("import_feed", *map(str, args), stdout=out)
    return out.getvalue().strip().splitlines()[-1]


# --- content encodings: decoded in bounded pieces, counted decoded ----------------------


@pytest.mark.parametrize("codings", ["gzip", "deflate", "raw-deflate", "gzip,gzip",
                                     "deflate,gzip", "gzip,deflate,gzip"])
def test_encoded_bodies_are_decoded_to_the_original_bytes(slow, codings):
    assert fetch(f"{slow.base}/encoded?as={codings}") == PLAIN


def test_the_fetch_asks_only_for_encodings_it_can_decode(slow):
    fetch(f"{slow.base}/encoded?as=gzip")
    assert slow.requests[-1]["Accept-Encoding"] == "gzip, deflate"


def test_a_stacked_gzip_bomb_stops_at_the_decoded_cap_in_flat_memory(slow):
    bomb = stacked_bomb()
    assert len(bomb) < 4096  # the 1,828-byte body, give or take
    out = io.BytesIO()
    stacked_bomb()  # built before tracing: only the fetch is measured
    tracemalloc.start()
    try:
        with pytest.raises(FetchError, match="over the 1048576-byte limit") as refused:
            fetch_url_to_file(f"{slow.base}/bomb", out, max_bytes=1 << 20, timeout=5)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Decoding it in one call (what httpx does per chunk) takes 128 MiB at once.
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes: the body was decoded in one go"
    assert len(out.getvalue()) <= 1 << 20  # decoded bytes kept never pass the cap
    assert "once decoded (Content-Encoding: gzip, gzip)" in str(refused.value)
    assert refused.value.permanent


def test_an_import_of_a_stacked_bomb_fails_clearly_and_leaves_no_file(slow, campaign, settings):
    settings.FEED_MAX_BYTES = 1 << 20
    with pytest.raises(CommandError, match="over the 1048576-byte limit once decoded"):
        import_feed("--campaign", campaign.slug, "--kind", "relay", f"{slow.base}/bomb")
    feed_import = FeedImport.objects.get()
    assert feed_import.status == FeedImport.FAILED
    assert "once decoded" in feed_import.error
    assert not import_dir(feed_import.pk).exists()
    assert not Host.objects.exists()


@pytest.mark.parametrize(("header", "named"), [("br", "br"), ("gzip, compress", "compress"),
                                               ("zstd", "zstd")])
def test_an_encoding_that_cannot_be_decoded_is_refused_by_name(slow, header, named):
    with pytest.raises(FetchError, match=f"unsupported Content-Encoding {named}") as refused:
        fetch(f"{slow.base}/encoded?as=gzip&header={header}")
    assert refused.value.permanent


def test_identity_is_no_encoding_and_deep_stacks_are_refused():
    assert content_codings("identity, gzip") == ["gzip"]
    assert content_codings("") == []
    with pytest.raises(FetchError, match="stacks 4 codings"):
        content_codings("gzip, gzip, gzip, gzip")


def test_a_truncated_or_corrupt_encoded_body_is_an_error_not_a_short_feed(slow):
    with pytest.raises(FetchError, match="gzip-encoded body"):
        fetch(f"{slow.base}/encoded?as=gzip&truncate=1")
    with pytest.raises(FetchError, match="corrupt"):
        fetch(f"{slow.base}/encoded?as=&header=gzip")  # plain text that says it is gzip


def test_an_import_through_stacked_gzip_counts_like_the_plain_file(slow, campaign):
    summary = import_feed("--campaign", campaign.slug, "--kind", "relay",
                          f"{slow.base}/encoded?as=gzip,gzip")
    # The allowlist that lets the fetch through also admits the feed's own 127.0.0.1 line.
    assert summary == "lines=192 added=147 known=0 rejected=12"


# --- one deadline per fetch ------------------------------------------------------------


def test_a_server_trickling_lines_is_cut_off_at_the_deadline(slow, campaign, settings):
    settings.FEED_FETCH_DEADLINE = 1
    with pytest.raises(CommandError, match="did not finish within the 1-second deadline"):
        import_feed("--campaign", campaign.slug, "--kind", "relay", f"{slow.base}/trickle")
    feed_import = FeedImport.objects.get()
    assert feed_import.status == FeedImport.FAILED
    assert "FEED_FETCH_DEADLINE" in feed_import.error
    assert not import_dir(feed_import.pk).exists()
    assert not Host.objects.exists()


def test_a_server_trickling_its_headers_is_cut_off_at_the_deadline(slow):
    with pytest.raises(FetchError, match="did not finish within the 0.5-second deadline") as cut:
        fetch(f"{slow.base}/trickle-headers", deadline=0.5)
    assert cut.value.permanent  # retrying would hold a worker as long again


def test_a_trickle_that_ends_within_the_deadline_is_fetched_whole(slow):
    assert fetch(f"{slow.base}/trickle?lines=3", deadline=30) == b"8.8.8.8\n" * 3


def test_the_deadline_comes_from_the_setting_by_default(slow, settings):
    settings.FEED_FETCH_DEADLINE = 0.5
    with pytest.raises(FetchError, match="0.5-second deadline"):
        fetch(f"{slow.base}/trickle")


# --- files of refused and failed imports are deleted --------------------------------------


def test_a_failed_url_import_deletes_its_fetched_file(slow, campaign):
    with pytest.raises(CommandError, match="no 'ip' column"):
        import_feed("--campaign", campaign.slug, "--kind", "proxy", "--format", "csv",
                    f"{slow.base}/garbage")
    feed_import = FeedImport.objects.get()
    assert feed_import.status == FeedImport.FAILED
    assert not import_dir(feed_import.pk).exists()


def test_a_url_import_cut_at_the_size_cap_deletes_its_partial_file(slow, campaign, settings):
    settings.FEED_MAX_BYTES = 1000
    with pytest.raises(CommandError, match="over the 1000-byte limit"):
        import_feed("--campaign", campaign.slug, "--kind", "relay",
                    f"{slow.base}/encoded?as=gzip")
    assert files_under(Path(settings.MEDIA_ROOT)) == []


def test_a_successful_url_import_keeps_its_fetched_file_as_before(slow, campaign, settings):
    import_feed("--campaign", campaign.slug, "--kind", "relay", f"{slow.base}/encoded?as=gzip")
    feed_import = FeedImport.objects.get()
    assert (import_dir(feed_import.pk) / "fetched").read_bytes() == PLAIN


@pytest.mark.django_db
def test_an_oversized_upload_to_the_service_leaves_no_copy(campaign, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.FEED_MAX_BYTES = 1000
    with pytest.raises(ValidationError, match="over the 1000-byte limit"):
        create_import(campaign=campaign, source="big.txt", kind="relay",
                      upload=io.BytesIO(PLAIN))
    assert not FeedImport.objects.exists()
    assert files_under(tmp_path / "media") == []
    assert not (tmp_path / "media" / "imports").exists() or not any(
        (tmp_path / "media" / "imports").iterdir())


@pytest.mark.django_db
def test_an_upload_that_fails_to_import_is_deleted(campaign, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    feed_import = create_import(campaign=campaign, source="plain.txt", fmt="csv", kind="relay",
                                upload=io.BytesIO(PLAIN))
    assert Path(feed_import.stored_file).is_file()
    with pytest.raises(Exception, match="no 'ip' column"):
        run_import(feed_import.pk)
    assert files_under(tmp_path / "media") == []


class Recording(FileUploadHandler):
    """Counts the bytes the handlers after the size limit were handed."""

    seen = 0

    def receive_data_chunk(self, raw_data, start):
        Recording.seen += len(raw_data)
        return raw_data

    def file_complete(self, file_size):
        return None


@pytest.mark.django_db
def test_a_refused_upload_leaves_no_file_on_disk_and_is_not_spooled_whole(
    client, alice, campaign, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "uploads")
    (tmp_path / "uploads").mkdir()
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 100  # anything larger goes to a temporary file
    settings.FILE_UPLOAD_HANDLERS = [
        "tests.test_import_limits.Recording",
        "django.core.files.uploadhandler.MemoryFileUploadHandler",
        "django.core.files.uploadhandler.TemporaryFileUploadHandler",
    ]
    settings.FEED_MAX_BYTES = 100_000
    big = tmp_path / "big.txt"
    big.write_bytes(PLAIN * 1000)  # 3.3 MB: many 64 KiB chunks over the limit
    Recording.seen = 0
    client.force_login(alice)
    with big.open("rb") as fh:
        response = client.post(reverse("import_create", args=[campaign.slug]),
                               {"upload": fh, "format": "auto", "kind": "relay"})
    assert files_under(tmp_path / "uploads") == []
    assert files_under(tmp_path / "media") == []
    assert not FeedImport.objects.exists()
    assert response.status_code == 400
    assert "larger than 97.7\xa0KB, the largest feed accepted" in response.content.decode()
    # Django's temporary file never got more than the limit: it was not spooled whole.
    assert Recording.seen <= 100_000
