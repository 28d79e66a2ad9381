"""Feed subscriptions (`subscribe_feed`, `fetch_feeds`) against a real HTTP server on loopback.

The server honours If-None-Match / If-Modified-Since the way nginx and Apache do, and records
every request, so the tests see exactly what went over the wire: one 304 and no import for an
unchanged feed, the secret header only to the feed's own origin, back-off after failures.
"""

from __future__ import annotations

import io
import socket
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from campaign.models import AuditEvent, FeedFetch, FeedImport, FeedSubscription, Host
from campaign.subscriptions import fetch_due, parse_interval, subscribe
from tests.conftest import FEEDS, make_user

pytestmark = pytest.mark.django_db

PLAIN = (FEEDS / "plain-ips.txt").read_bytes()
LAST_MODIFIED = "Sat, 21 Nov 2026 06:00:00 GMT"


class ConditionalServer:
    """Serves /feed with an ETag and Last-Modified; answers 304 when the client has it."""

    def __init__(self, host: str) -> None:
        self.body = PLAIN
        self.etag = '"v1"'
        self.status = 200
        self.honour_validators = True
        self.redirect_to = ""
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802
                outer.requests.append({"path": self.path, **{k.lower(): v for k, v in
                                                             self.headers.items()}})
                if self.path == "/redirect" and outer.redirect_to:
                    self.send_response(302)
                    self.send_header("Location", outer.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if outer.status != 200:
                    self._send(outer.status, b"down for maintenance")
                    return
                if outer.honour_validators and (
                        self.headers.get("If-None-Match") == outer.etag
                        or self.headers.get("If-Modified-Since") == LAST_MODIFIED
                        and not self.headers.get("If-None-Match")):
                    self.send_response(304)
                    self.send_header("ETag", outer.etag)
                    self.end_headers()
                    return
                self._send(200, outer.body)

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                if status == 200:
                    self.send_header("ETag", outer.etag)
                    self.send_header("Last-Modified", LAST_MODIFIED)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Server(ThreadingHTTPServer):
            address_family = socket.AF_INET
            daemon_threads = True

        self.server = Server((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}/feed"
        self.base = f"http://{host}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def feed_server(settings):
    settings.PROBE_ALLOWED_NETWORKS = ["127.0.0.5/32", "127.0.0.6/32"]
    server = ConditionalServer("127.0.0.5")
    yield server
    server.close()


def run(name: str, *args: str) -> str:
    out = io.StringIO()
    call_command(name, *map(str, args), stdout=out, stderr=io.StringIO())
    return out.getvalue().strip().splitlines()[-1]


def make_due(subscription_id: int) -> None:
    FeedSubscription.objects.filter(pk=subscription_id).update(
        next_fetch_at=timezone.now() - timedelta(seconds=1))


def test_subscribe_prints_the_feed_and_its_first_fetch(campaign, feed_server):
    before = timezone.now().replace(microsecond=0)
    line = run("subscribe_feed", "--campaign", campaign.slug, "--url", feed_server.url,
               "--kind", "relay", "--every", "6h")

    subscription = FeedSubscription.objects.get()
    assert line.startswith(f"feed={subscription.pk} next_fetch=")
    assert timezone.datetime.fromisoformat(line.split("next_fetch=")[1]) >= before
    assert (subscription.interval_seconds, subscription.kind) == (6 * 3600, "relay")
    assert feed_server.requests == []  # subscribing fetches nothing
    # Subscribing the same URL again changes it; it does not make a second one.
    again = run("subscribe_feed", "--campaign", campaign.slug, "--url", feed_server.url,
                "--kind", "relay", "--every", "1d")
    assert again.startswith(f"feed={subscription.pk} ")
    assert FeedSubscription.objects.get().interval_seconds == 86400


def test_an_unchanged_feed_costs_one_304_and_no_import(campaign, feed_server, settings):
    run("subscribe_feed", "--campaign", campaign.slug, "--url", feed_server.url, "--kind",
        "relay", "--every", "1h")

    assert run("fetch_feeds") == "fetched=1 unchanged=0 failed=0"
    assert Host.objects.filter(campaign=campaign).count() == 146
    assert FeedImport.objects.count() == 1
    assert FeedImport.objects.get().summary_line == "lines=192 added=146 known=0 rejected=13"
    # The fetched body became the import's stored copy (moved, not copied): none left over.
    assert Path(FeedImport.objects.get().stored_file).read_bytes() == PLAIN
    assert not any((Path(settings.MEDIA_ROOT) / "subscriptions").rglob("fetch-*"))

    # Not due yet: nothing is requested.
    assert run("fetch_feeds") == "fetched=0 unchanged=0 failed=0"
    assert len(feed_server.requests) == 1

    assert run("fetch_feeds", "--now") == "fetched=0 unchanged=1 failed=0", \
        FeedFetch.objects.first().error
    assert len(feed_server.requests) == 2
    assert feed_server.requests[1]["if-none-match"] == '"v1"'
    assert feed_server.requests[1]["if-modified-since"] == LAST_MODIFIED
    assert FeedImport.objects.count() == 1  # no import for a 304
    fetch = FeedFetch.objects.order_by("-id").first()
    assert (fetch.outcome, fetch.http_status, fetch.bytes) == ("unchanged", 304, 0)

    # New content: a 200, imported; the hosts it adds are the new ones only.
    feed_server.body = PLAIN + b"82.44.76.99\n"
    feed_server.etag = '"v2"'
    assert run("fetch_feeds", "--now") == "fetched=1 unchanged=0 failed=0"
    latest = FeedImport.objects.order_by("-id").first()
    assert latest.summary_line == "lines=193 added=1 known=146 rejected=13"
    assert FeedSubscription.objects.get().etag == '"v2"'


def test_a_server_that_ignores_validators_but_sends_the_same_bytes_is_unchanged(
        campaign, feed_server):
    feed_server.honour_validators = False
    subscription = subscribe(campaign=campaign, url=feed_server.url, kind="relay", every="1h")
    fetch_due(now_all=True)

    assert fetch_due(now_all=True).summary_line == "fetched=0 unchanged=1 failed=0"
    assert FeedImport.objects.count() == 1
    fetch = subscription.fetches.first()
    assert (fetch.outcome, fetch.http_status) == ("unchanged", 200)


def test_a_failing_feed_backs_off_and_turns_red_after_n_failures(campaign, feed_server,
                                                                 settings):
    settings.FEED_RETRY_SECONDS = 300
    settings.FEED_FAILURES_ALERT = 3
    feed_server.status = 503
    subscription = subscribe(campaign=campaign, url=feed_server.url, kind="relay", every="1d")
    delays = []
    for _attempt in range(3):
        make_due(subscription.pk)
        started = timezone.now()
        assert fetch_due().summary_line == "fetched=0 unchanged=0 failed=1"
        subscription.refresh_from_db()
        delays.append(round((subscription.next_fetch_at - started).total_seconds() / 60))
    assert delays == [5, 10, 20]  # minutes: 300 s doubling
    assert subscription.failures == 3 and subscription.failing
    assert "answered HTTP 503" in subscription.last_error
    assert FeedImport.objects.count() == 0
    # Never later than the regular schedule, however long it keeps failing.
    FeedSubscription.objects.filter(pk=subscription.pk).update(failures=30)
    make_due(subscription.pk)
    fetch_due()
    subscription.refresh_from_db()
    assert subscription.next_fetch_at - timezone.now() <= timedelta(days=1)

    feed_server.status = 200
    make_due(subscription.pk)
    assert fetch_due().summary_line == "fetched=1 unchanged=0 failed=0"
    subscription.refresh_from_db()
    assert (subscription.failures, subscription.last_error, subscription.failing) == (0, "", False)


def test_failed_fetches_are_said_on_stderr(campaign, feed_server):
    feed_server.status = 404
    subscription = subscribe(campaign=campaign, url=feed_server.url, kind="relay", every="1h")
    err = io.StringIO()
    out = io.StringIO()
    call_command("fetch_feeds", stdout=out, stderr=err)
    assert out.getvalue().strip() == "fetched=0 unchanged=0 failed=1"
    assert f"feed {subscription.pk}:" in err.getvalue() and "HTTP 404" in err.getvalue()


def test_bad_lines_are_an_import_with_rejections_not_a_failed_fetch(campaign, feed_server):
    feed_server.body = b"\xff\xfe not a feed at all\n" * 3
    subscription = subscribe(campaign=campaign, url=feed_server.url, kind="relay",
                             every="1h", fmt="intelmq")
    assert fetch_due(now_all=True).summary_line == "fetched=1 unchanged=0 failed=0"
    fetch = subscription.fetches.first()
    assert fetch.feed_import.summary_line == "lines=3 added=0 known=0 rejected=3"


def test_a_feed_no_format_can_read_fails_and_is_asked_for_whole_again(campaign, feed_server):
    feed_server.body = b"<html><body>Please log in</body></html>\n"
    subscription = subscribe(campaign=campaign, url=feed_server.url, kind="relay", every="1h")
    assert fetch_due(now_all=True).summary_line == "fetched=0 unchanged=0 failed=1"
    subscription.refresh_from_db()
    assert "no line looks like an address" in subscription.last_error
    assert subscription.fetches.first().feed_import.status == FeedImport.FAILED
    # The failed content was never imported: the next fetch asks without validators and gets
    # the body again (not a 304 that would hide it for ever).
    fetch_due(now_all=True)
    assert "if-none-match" not in feed_server.requests[-1]
    assert subscription.fetches.first().http_status == 200


def test_the_secret_header_goes_to_the_feed_origin_only(campaign, feed_server, monkeypatch,
                                                        settings):
    other = ConditionalServer("127.0.0.6")
    try:
        monkeypatch.setenv("FEED_AUTH_SHADOWSERVER", "X-Api-Key: s3cret-key")
        subscribe(campaign=campaign, url=feed_server.url, kind="relay", every="1h",
                  auth_secret="FEED_AUTH_SHADOWSERVER")
        fetch_due(now_all=True)
        assert feed_server.requests[-1]["x-api-key"] == "s3cret-key"

        feed_server.redirect_to = other.url
        subscribe(campaign=campaign, url=feed_server.base + "/redirect", kind="relay",
                  every="1h", auth_secret="FEED_AUTH_SHADOWSERVER")
        fetch_due(now_all=True)
        assert feed_server.requests[-1]["x-api-key"] == "s3cret-key"
        assert other.requests and "x-api-key" not in other.requests[-1]
        assert AuditEvent.objects.filter(action="feed.fetch").count() >= 3
        assert "s3cret-key" not in str(list(AuditEvent.objects.values_list("data", flat=True)))
    finally:
        other.close()


def test_a_missing_secret_fails_the_fetch_with_its_name(campaign, feed_server):
    subscription = subscribe(campaign=campaign, url=feed_server.url, kind="relay", every="1h",
                             auth_secret="FEED_AUTH_NOT_SET_HERE")
    assert fetch_due(now_all=True).failed == 1
    subscription.refresh_from_db()
    assert "FEED_AUTH_NOT_SET_HERE is not set" in subscription.last_error
    assert feed_server.requests == []


def test_only_admins_attach_secrets_and_readers_cannot_subscribe(campaign, feed_server):
    analyst = make_user("ana", "analyst")
    reviewer = make_user("rev", "reviewer")
    admin = make_user("adm", "admin")
    with pytest.raises(CommandError, match="may not attach a feed secret"):
        run("subscribe_feed", "--campaign", campaign.slug, "--url", feed_server.url,
            "--every", "1h", "--kind", "relay", "--auth-secret", "FEED_AUTH_X", "--by", "ana")
    with pytest.raises(CommandError, match="may not import feeds"):
        run("subscribe_feed", "--campaign", campaign.slug, "--url", feed_server.url,
            "--every", "1h", "--kind", "relay", "--by", "rev")
    run("subscribe_feed", "--campaign", campaign.slug, "--url", feed_server.url, "--every",
        "1h", "--kind", "relay", "--auth-secret", "FEED_AUTH_X", "--by", "adm")
    assert FeedSubscription.objects.get().created_by == admin
    assert analyst and reviewer


@pytest.mark.parametrize(("args", "message"), [
    (["--url", "http://10.0.0.5/feed.txt", "--every", "1h"], "cannot be fetched"),
    (["--url", "ftp://feeds.example/x", "--every", "1h"], r"not an http\(s\) URL"),
    (["--url", "https://feeds.example/x", "--every", "5s"], "too often"),
    (["--url", "https://feeds.example/x", "--every", "soon"], "not an interval"),
    (["--url", "https://feeds.example/x", "--cron", "61 * * * *"], "not a cron expression"),
    (["--url", "https://feeds.example/x", "--cron", "0 6 * *"], "five fields"),
    (["--url", "https://feeds.example/x", "--every", "1h", "--auth-secret", "SECRET_KEY"],
     "FEED_AUTH_"),
])
def test_bad_subscriptions_are_refused_with_a_reason(campaign, args, message):
    with pytest.raises(CommandError, match=message):
        run("subscribe_feed", "--campaign", campaign.slug, "--kind", "relay", *args)
    assert not FeedSubscription.objects.exists()


def test_a_cron_schedule_names_the_next_matching_minute(campaign, feed_server):
    subscription = subscribe(campaign=campaign, url=feed_server.url, kind="relay",
                             cron="15 */6 * * *")
    fetch_due(now_all=True)
    subscription.refresh_from_db()
    nxt = subscription.next_fetch_at
    assert nxt.minute == 15 and nxt.hour % 6 == 0 and nxt > timezone.now()
    assert nxt - timezone.now() <= timedelta(hours=6)


@pytest.mark.parametrize(("text", "seconds"), [("15m", 900), ("6h", 21600), ("1d", 86400),
                                               ("1h30m", 5400), ("900", 900)])
def test_intervals(text, seconds):
    assert parse_interval(text) == seconds


def test_a_paused_subscription_is_not_fetched_and_a_claimed_one_not_twice(campaign,
                                                                          feed_server):
    from campaign.subscriptions import claim, set_active  # noqa: PLC0415

    paused = subscribe(campaign=campaign, url=feed_server.url, kind="relay", every="1h")
    set_active(paused, active=False)
    assert fetch_due(now_all=True).summary_line == "fetched=0 unchanged=0 failed=0"
    set_active(paused, active=True)
    # A fetcher holds it: a second fetcher (the beat while `fetch_feeds --now` runs) skips it.
    assert claim(now=timezone.now()) == [paused.pk]
    assert claim(now=timezone.now(), due_only=False) == []
    assert feed_server.requests == []
