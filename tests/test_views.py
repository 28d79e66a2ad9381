"""The staff pages through Django's test client: access rules, counts, imports, host search."""

import ipaddress
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from campaign import kinds, states
from campaign.models import Feed, FeedImport, Host, ImportLineIssue, Sighting
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def feed_import(campaign, alice):
    feed = Feed.objects.create(name="example-openrelay.txt")
    return FeedImport.objects.create(
        campaign=campaign, feed=feed, source="example-openrelay.txt", kind=kinds.RELAY,
        status=FeedImport.DONE, lines=10, added=5, rejected=2, created_by=alice,
    )


def add_hosts(campaign, count, *, start=0, state=states.IMPORTED, kind=kinds.RELAY, country=""):
    base = int(ipaddress.ip_address("11.0.0.0"))
    hosts = [
        Host(campaign=campaign, ip=str(ipaddress.ip_address(base + start + i)), state=state,
             kinds=kind, country=country)
        for i in range(count)
    ]
    return Host.objects.bulk_create(hosts)


def url(name, *args):
    return reverse(name, args=args)


# --- login, logout, password --------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_login_page_has_labelled_fields_landmarks_and_a_skip_link(client):
    body = client.get(reverse("login")).content.decode()
    assert '<label for="id_username">' in body
    assert '<label for="id_password">' in body
    assert 'href="#main"' in body and '<main id="main"' in body
    assert "<header" in body and "<footer" in body


def test_a_user_logs_in_and_lands_on_the_campaign_list(client, alice, campaign):
    response = client.post(reverse("login"), {"username": "alice", "password": "correct-horse-9"},
                           follow=True)
    assert response.redirect_chain[-1][0] == reverse("campaign_list")
    assert "oss-2026" in response.content.decode()
    assert "Log out" in response.content.decode()


def test_a_wrong_password_shows_an_error_and_no_session(client, alice):
    response = client.post(reverse("login"), {"username": "alice", "password": "wrong"})
    assert response.status_code == 200
    assert "didn't match" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_logging_out_ends_the_session(client, alice):
    client.force_login(alice)
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get("/").status_code == 302


def test_a_user_changes_their_password(client, alice):
    client.force_login(alice)
    assert client.get(reverse("password_change")).status_code == 200
    response = client.post(reverse("password_change"), {
        "old_password": "correct-horse-9",
        "new_password1": "a-much-longer-phrase-42",
        "new_password2": "a-much-longer-phrase-42",
    })
    assert response["Location"] == reverse("password_change_done")
    alice.refresh_from_db()
    assert alice.check_password("a-much-longer-phrase-42")


# --- campaign list and detail ------------------------------------------------------------


def test_the_campaign_list_shows_only_the_users_agency_when_they_have_one(client, campaign):
    from campaign.services import create_campaign

    create_campaign(slug="bsi-2026", agency_name="BSI", kinds="relay")
    bound = make_user("dora", "analyst", agency_name="BSI")
    client.force_login(bound)
    body = client.get("/").content.decode()
    assert "bsi-2026" in body
    assert "oss-2026" not in body
    # And another agency's campaign is not there at all, not merely hidden from the list.
    assert client.get(url("campaign_detail", "oss-2026")).status_code == 404


def test_the_campaign_detail_shows_the_funnel_with_percentages(client, alice, campaign):
    add_hosts(campaign, 6, state=states.IMPORTED)
    add_hosts(campaign, 1, start=100, state=states.NOT_OPEN)
    add_hosts(campaign, 1, start=200, state=states.VERIFIED_OPEN)
    add_hosts(campaign, 1, start=300, state=states.NOTIFIED)
    add_hosts(campaign, 1, start=400, state=states.REMEDIATED)
    client.force_login(alice)
    response = client.get(url("campaign_detail", campaign.slug))
    funnel = {step.key: (step.count, step.percent) for step in response.context["counts"].funnel}
    assert funnel == {
        "imported": (10, 100.0),
        "verified_open": (3, 30.0),
        "contact_found": (2, 20.0),
        "approved": (0, 0.0),  # no letters: the letter steps are tested in test_dashboard
        "sent": (0, 0.0),
        "delivered": (0, 0.0),
        "remediated": (1, 10.0),
    }
    body = response.content.decode()
    assert "10 hosts in this campaign" in body
    assert "(30.0%)" in body


def test_the_campaign_detail_costs_the_same_queries_for_ten_or_a_thousand_hosts(
    client, alice, campaign, feed_import
):
    client.force_login(alice)
    add_hosts(campaign, 10)
    client.get(url("campaign_detail", campaign.slug))  # warm the session
    with CaptureQueriesContext(connection) as small:
        client.get(url("campaign_detail", campaign.slug))
    add_hosts(campaign, 1000, start=5000, state=states.VERIFIED_OPEN)
    for _ in range(5):
        FeedImport.objects.create(campaign=campaign, feed=feed_import.feed, source="x", kind=1)
    with CaptureQueriesContext(connection) as large:
        response = client.get(url("campaign_detail", campaign.slug))
    assert response.context["counts"].total == 1010
    assert len(large.captured_queries) == len(small.captured_queries)
    host_queries = [q["sql"] for q in large.captured_queries if '"campaign_host"' in q["sql"]]
    # One GROUP BY (country, state) for the funnel, the state table and the country chart;
    # one for the remediation curve.
    assert len(host_queries) == 2


def test_the_campaign_detail_lists_recent_imports_with_status(client, alice, campaign, feed_import):
    client.force_login(alice)
    body = client.get(url("campaign_detail", campaign.slug)).content.decode()
    assert f"#{feed_import.pk} example-openrelay.txt" in body
    assert "lines=10 added=5 known=0 rejected=2" in body
    assert "status-done" in body


# --- roles: the UI shows only allowed actions, the server refuses the rest ----------------


def test_an_analyst_sees_the_import_action(client, alice, campaign):
    client.force_login(alice)
    body = client.get(url("campaign_detail", campaign.slug)).content.decode()
    assert url("import_create", campaign.slug) in body


def test_a_reviewer_sees_no_import_action_and_gets_403_from_the_import_page(
    client, rita, campaign, feeds_dir
):
    client.force_login(rita)
    body = client.get(url("campaign_detail", campaign.slug)).content.decode()
    assert url("import_create", campaign.slug) not in body
    assert client.get(url("import_create", campaign.slug)).status_code == 403
    with (feeds_dir / "plain-ips.txt").open("rb") as fh:
        response = client.post(url("import_create", campaign.slug),
                               {"upload": fh, "format": "auto", "kind": "relay"})
    assert response.status_code == 403
    assert "Not allowed" in response.content.decode()
    assert FeedImport.objects.count() == 0


def test_a_user_without_any_role_gets_403_everywhere(client, campaign, django_user_model):
    nobody = django_user_model.objects.create_user("mallory", password="x-irrelevant-1")
    client.force_login(nobody)
    for path in ("/", url("campaign_detail", campaign.slug), url("host_list", campaign.slug)):
        assert client.get(path).status_code == 403, path


# --- imports -----------------------------------------------------------------------------


def test_an_analyst_uploads_a_feed_and_sees_the_counts_and_rejection_report(
    client, alice, campaign, feeds_dir, django_capture_on_commit_callbacks
):
    client.force_login(alice)
    # The task is queued on commit; the test transaction never commits, so run the callbacks.
    with (
        (feeds_dir / "plain-ips.txt").open("rb") as fh,
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        response = client.post(url("import_create", campaign.slug),
                               {"upload": fh, "format": "auto", "kind": "relay"})
    # The queued import, then (the task runs eagerly here) the import's hosts_changed.
    assert len(callbacks) == 2
    feed_import = FeedImport.objects.get()
    assert response["Location"] == url("import_detail", campaign.slug, feed_import.pk)
    assert feed_import.created_by == alice
    page = client.get(response["Location"])
    body = page.content.decode()
    assert "lines=192 added=146 known=0 rejected=13" in body
    assert 'data-line="41"' in body
    row41 = body.split('data-line="41"', 1)[1].split("</tr>", 1)[0]
    assert "private" in row41
    assert "job-progress.js" not in body  # finished: nothing left to poll


def test_the_status_endpoint_reports_progress_for_the_page_to_poll(client, alice, campaign,
                                                                     feed_import):
    FeedImport.objects.filter(pk=feed_import.pk).update(
        status=FeedImport.RUNNING, bytes_total=1000, bytes_read=420, lines=7)
    client.force_login(alice)
    data = client.get(url("import_status", campaign.slug, feed_import.pk)).json()
    assert data["status"] == "running"
    assert data["finished"] is False
    assert data["progress_percent"] == 42
    assert data["lines"] == 7
    page = client.get(url("import_detail", campaign.slug, feed_import.pk)).content.decode()
    assert "job-progress.js" in page
    assert "Rejection report" not in page


def test_the_import_form_wants_exactly_one_of_file_and_url(client, alice, campaign, feeds_dir):
    client.force_login(alice)
    response = client.post(url("import_create", campaign.slug), {"format": "auto"})
    assert response.status_code == 400
    assert "either a file or a URL" in response.content.decode()
    with (feeds_dir / "plain-ips.txt").open("rb") as fh:
        response = client.post(url("import_create", campaign.slug), {
            "upload": fh, "url": "https://lists.example.org/x.txt", "format": "auto"})
    assert response.status_code == 400
    assert FeedImport.objects.count() == 0


def test_the_import_form_refuses_a_kind_the_campaign_does_not_target(client, alice, feeds_dir):
    from campaign.services import create_campaign

    relay_only = create_campaign(slug="relays", agency_name="FTC", kinds="relay")
    client.force_login(alice)
    with (feeds_dir / "plain-ips.txt").open("rb") as fh:
        response = client.post(url("import_create", relay_only.slug),
                               {"upload": fh, "format": "auto", "kind": "proxy"})
    assert response.status_code == 400
    # The page does not offer proxy for a relay campaign (issue 14): a forged one is refused.
    assert "Select a valid choice" in response.content.decode()
    assert FeedImport.objects.count() == 0


def test_the_rejection_report_is_paginated(client, alice, campaign, feed_import):
    ImportLineIssue.objects.bulk_create(
        ImportLineIssue(feed_import=feed_import, line_no=n, content=f"bad{n}", reason="invalid",
                        message="not an IP address")
        for n in range(1, 121)
    )
    client.force_login(alice)
    first = client.get(url("import_detail", campaign.slug, feed_import.pk)).content.decode()
    assert "bad50<" in first and "bad51<" not in first
    assert "Page 1 of 3" in first
    third = client.get(url("import_detail", campaign.slug, feed_import.pk) + "?page=3")
    assert "bad120<" in third.content.decode() and "bad100<" not in third.content.decode()


def test_an_import_of_another_campaign_is_not_found(client, alice, campaign, feed_import):
    from campaign.services import create_campaign

    other = create_campaign(slug="other", agency_name="FTC", kinds="relay")
    client.force_login(alice)
    assert client.get(url("import_detail", other.slug, feed_import.pk)).status_code == 404
    assert client.get(url("import_status", other.slug, feed_import.pk)).status_code == 404


# --- hosts -------------------------------------------------------------------------------


def listed_ips(response):
    return [h.ip for h in response.context["page"].hosts]


def test_the_host_list_filters_by_state_kind_and_country(client, alice, campaign):
    add_hosts(campaign, 3, state=states.IMPORTED, kind=kinds.RELAY, country="DE")
    add_hosts(campaign, 2, start=10, state=states.VERIFIED_OPEN, kind=kinds.PROXY, country="FR")
    add_hosts(campaign, 1, start=20, state=states.VERIFIED_OPEN,
              kind=kinds.RELAY | kinds.PROXY, country="DE")
    client.force_login(alice)
    hosts = url("host_list", campaign.slug)
    assert len(listed_ips(client.get(hosts))) == 6
    assert len(listed_ips(client.get(hosts, {"state": "verified_open"}))) == 3
    assert len(listed_ips(client.get(hosts, {"kind": "proxy"}))) == 3
    assert len(listed_ips(client.get(hosts, {"kind": "relay"}))) == 4
    assert listed_ips(client.get(hosts, {"country": "de", "kind": "proxy"})) == ["11.0.0.20"]


def test_the_host_list_finds_one_address(client, alice, campaign):
    add_hosts(campaign, 5)
    client.force_login(alice)
    response = client.get(url("host_list", campaign.slug), {"q": "11.0.0.3"})
    assert listed_ips(response) == ["11.0.0.3"]


def test_the_host_list_searches_a_network_on_postgresql(client, alice, campaign):
    assert connection.vendor == "postgresql"
    add_hosts(campaign, 300)  # 11.0.0.0 .. 11.0.1.43
    client.force_login(alice)
    response = client.get(url("host_list", campaign.slug), {"q": "11.0.1.0/26"})
    ips = listed_ips(response)
    assert ips[0] == "11.0.1.0" and ips[-1] == "11.0.1.43" and len(ips) == 44


def test_the_host_list_explains_a_query_that_is_not_an_address(client, alice, campaign):
    client.force_login(alice)
    response = client.get(url("host_list", campaign.slug), {"q": "example.org"})
    assert "Enter an IP address" in response.content.decode()
    assert response.context["page"] is None


def test_the_host_list_pages_by_keyset_without_counting_the_table(client, alice, campaign):
    add_hosts(campaign, 120, state=states.VERIFIED_OPEN)
    client.force_login(alice)
    hosts = url("host_list", campaign.slug)
    first = client.get(hosts, {"state": "verified_open"})
    page1 = first.context["page"]
    assert len(page1.hosts) == 50 and page1.prev_before is None
    assert f"state=verified_open&amp;after={page1.next_after}" in first.content.decode()
    with CaptureQueriesContext(connection) as queries:
        second = client.get(hosts, {"state": "verified_open", "after": page1.next_after})
    page2 = second.context["page"]
    assert {h.ip for h in page1.hosts}.isdisjoint({h.ip for h in page2.hosts})
    assert page2.hosts[0].id == page1.hosts[-1].id + 1
    assert not any("COUNT(" in q["sql"].upper() for q in queries.captured_queries)
    third = client.get(hosts, {"state": "verified_open", "after": page2.next_after}).context["page"]
    assert len(third.hosts) == 20 and third.next_after is None
    back = client.get(hosts, {"state": "verified_open", "before": third.prev_before})
    assert [h.id for h in back.context["page"].hosts] == [h.id for h in page2.hosts]


def test_the_host_page_shows_sightings_ports_and_kinds(client, alice, campaign, feed_import):
    host = add_hosts(campaign, 1, kind=kinds.RELAY | kinds.PROXY, country="NL")[0]
    now = timezone.now()
    Sighting.objects.create(host=host, feed_import=feed_import, line_no=41, seen_at=now,
                            port=8080, kind=kinds.PROXY, tag="http-proxy")
    Sighting.objects.create(host=host, feed_import=feed_import, line_no=7,
                            seen_at=now - timedelta(days=1), port=25, kind=kinds.RELAY)
    client.force_login(alice)
    response = client.get(url("host_detail", campaign.slug, host.ip))
    body = response.content.decode()
    assert response.context["detail"].ports == [25, 8080]
    assert "25, 8080" in body
    assert "open relay" in body and "open proxy" in body
    assert "http-proxy" in body and "example-openrelay.txt" in body
    assert '<td class="num">41</td>' in body


def test_the_host_page_works_for_ipv6_and_404s_for_unknown_addresses(client, alice, campaign):
    Host.objects.create(campaign=campaign, ip="2a01:4f8::25", kinds=kinds.RELAY)
    client.force_login(alice)
    assert client.get(url("host_detail", campaign.slug, "2a01:4f8::25")).status_code == 200
    assert client.get(url("host_detail", campaign.slug, "2a01:4f8::26")).status_code == 404
    assert client.get(url("host_detail", campaign.slug, "not-an-ip")).status_code == 404


@pytest.fixture
def feed_server(feeds_dir):
    """A plain HTTP server on loopback that serves the sample feeds."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(feeds_dir))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_analyst_imports_a_feed_from_a_url(
    client, alice, campaign, feed_server, settings, django_capture_on_commit_callbacks
):
    # Loopback is internal space: only a lab/test allowlist lets the fetch through.
    settings.PROBE_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url("import_create", campaign.slug), {
            "url": f"{feed_server}/plain-ips.txt", "format": "ip", "kind": "relay"})
    feed_import = FeedImport.objects.get()
    assert response["Location"] == url("import_detail", campaign.slug, feed_import.pk)
    assert feed_import.status == FeedImport.DONE
    assert feed_import.lines == 192
    body = client.get(response["Location"]).content.decode()
    assert f"{feed_server}/plain-ips.txt" in body
    assert feed_import.summary_line in body


def test_a_url_on_an_internal_address_is_refused_and_the_page_says_why(
    client, alice, campaign, feed_server, django_capture_on_commit_callbacks
):
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url("import_create", campaign.slug), {
            "url": f"{feed_server}/plain-ips.txt", "format": "auto", "kind": "relay"})
    feed_import = FeedImport.objects.get()
    assert feed_import.status == FeedImport.FAILED
    assert feed_import.error
    body = client.get(response["Location"]).content.decode()
    assert "status-failed" in body
    assert feed_import.error.split(":")[0] in body
    assert Host.objects.count() == 0
