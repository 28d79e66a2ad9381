"""The probe pages through Django's test client: starting runs, watching them, reading evidence."""

import ipaddress
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from campaign import kinds, states
from campaign.models import AuditEvent, Feed, FeedImport, Host, Sighting
from probes.verification.models import ProbeResult, ProbeRun
from tests import probe_fixtures
from tests.probe_fixtures import closed_port

pytestmark = pytest.mark.django_db

# Fake relays on loopback and the loopback-only guard, shared with the other probe-page tests.
fake_loop = probe_fixtures.fake_loop
loopback_only = probe_fixtures.loopback_only
lab_settings = probe_fixtures.lab_settings
smtp_fake = probe_fixtures.smtp_fake


def url(name, *args):
    return reverse(name, args=args)


def add_hosts(campaign, count, *, start=0, state=states.IMPORTED):
    base = int(ipaddress.ip_address("11.0.0.0"))
    return Host.objects.bulk_create(
        Host(campaign=campaign, ip=str(ipaddress.ip_address(base + start + i)), state=state,
             kinds=kinds.RELAY)
        for i in range(count)
    )


def recorded_run(campaign, hosts, *, verdicts=("open", "not_open"), status=ProbeRun.DONE,
                 transcript="S: 220 fake ESMTP\nC: EHLO probe\n"):
    """A run as the workers leave it: one result per host and check, counts by verdict."""
    run = ProbeRun.objects.create(campaign=campaign, status=status, total=len(hosts),
                                  done=len(hosts), host_ids=[h.pk for h in hosts])
    rows = []
    counts = dict.fromkeys(("open", "not_open", "unreachable", "error"), 0)
    for i, host in enumerate(hosts):
        verdict = verdicts[i % len(verdicts)]
        counts[verdict] += 1
        rows.append(ProbeResult(run=run, host=host, check_name="smtp_relay", port=25,
                                verdict=verdict, variant="plain" if verdict == "open" else "",
                                transcript=transcript, duration_ms=120 + i))
    ProbeResult.objects.bulk_create(rows)
    ProbeRun.objects.filter(pk=run.pk).update(**{f"{k}_count": v for k, v in counts.items()},
                                              checks_done=len(rows))
    run.refresh_from_db()
    return run


# --- who may start a run ------------------------------------------------------------------


def test_a_reviewer_sees_no_start_button_and_gets_403_from_the_start_url(client, rita, campaign):
    add_hosts(campaign, 3)
    client.force_login(rita)
    body = client.get(url("campaign_detail", campaign.slug)).content.decode()
    assert url("probe_run_start", campaign.slug) not in body
    assert "Start probe run" not in body
    assert client.get(url("probe_run_start", campaign.slug)).status_code == 403
    response = client.post(url("probe_run_start", campaign.slug), {"state": "", "limit": ""})
    assert response.status_code == 403
    assert "Not allowed" in response.content.decode()
    assert ProbeRun.objects.count() == 0


def test_staff_see_the_start_button_on_the_campaign_page(client, bob, campaign):
    client.force_login(bob)
    body = client.get(url("campaign_detail", campaign.slug)).content.decode()
    assert f'action="{url("probe_run_start", campaign.slug)}"' in body
    assert "Start probe run" in body
    assert "No probe run yet" in body


def test_the_start_page_offers_the_state_filter_and_limit_with_labels(client, alice, campaign):
    client.force_login(alice)
    body = client.get(url("probe_run_start", campaign.slug)).content.decode()
    assert '<label for="id_state">Hosts in state</label>' in body
    assert '<label for="id_limit">At most</label>' in body
    assert '<option value="verified_open">Verified open</option>' in body
    assert 'name="csrfmiddlewaretoken"' in body


def test_an_anonymous_visitor_is_sent_to_log_in_and_starts_nothing(client, campaign):
    add_hosts(campaign, 2)
    response = client.post(url("probe_run_start", campaign.slug))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert ProbeRun.objects.count() == 0


def test_starting_a_run_needs_the_csrf_token(bob, campaign, django_capture_on_commit_callbacks):
    add_hosts(campaign, 2)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(bob)
    assert browser.post(url("probe_run_start", campaign.slug)).status_code == 403
    assert ProbeRun.objects.count() == 0
    page = browser.get(url("campaign_detail", campaign.slug)).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    with django_capture_on_commit_callbacks(execute=False):
        response = browser.post(url("probe_run_start", campaign.slug),
                                {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert ProbeRun.objects.count() == 1


def test_a_run_of_another_agencys_campaign_cannot_be_started(client, campaign):
    from campaign.services import create_campaign
    from tests.conftest import make_user

    create_campaign(slug="bsi-2026", agency_name="BSI", kinds="relay")
    outsider = make_user("dora", "staff", agency_name="BSI")
    client.force_login(outsider)
    assert client.post(url("probe_run_start", campaign.slug)).status_code == 404
    assert ProbeRun.objects.count() == 0


# --- starting a run -----------------------------------------------------------------------


def test_staff_start_a_run_over_the_hosts_in_one_state_up_to_a_limit(
    client, bob, campaign, django_capture_on_commit_callbacks
):
    imported = add_hosts(campaign, 5)
    add_hosts(campaign, 3, start=100, state=states.VERIFIED_OPEN)
    client.force_login(bob)
    # The hosts are public addresses: the queued task must not run (it would probe them).
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(url("probe_run_start", campaign.slug),
                               {"state": "imported", "limit": "2"})
    run = ProbeRun.objects.get()
    assert response["Location"] == url("probe_run_detail", campaign.slug, run.pk)
    assert len(callbacks) == 1  # the run is queued when the transaction commits
    assert run.host_ids == [imported[0].pk, imported[1].pk]
    assert (run.total, run.state_filter, run.status) == (2, "imported", ProbeRun.QUEUED)
    assert run.created_by == bob
    event = AuditEvent.objects.get(action="probe_run.start")
    assert event.data["limit"] == 2 and event.data["state"] == "imported"
    page = client.get(response["Location"]).content.decode()
    assert f"Probe run #{run.pk} of 2 hosts queued." in page
    assert "job-progress.js" in page
    assert "probed=0 open=0 not_open=0 unreachable=0 error=0" in page


def test_a_start_that_matches_no_host_explains_why_and_starts_nothing(client, bob, campaign):
    add_hosts(campaign, 2)
    client.force_login(bob)
    response = client.post(url("probe_run_start", campaign.slug), {"state": "remediated"})
    assert response.status_code == 400
    assert "there is nothing to probe" in response.content.decode()
    assert ProbeRun.objects.count() == 0


def test_a_bad_state_or_limit_is_refused_with_the_form_again(client, bob, campaign):
    add_hosts(campaign, 2)
    client.force_login(bob)
    bad_state = client.post(url("probe_run_start", campaign.slug), {"state": "pwned"})
    assert bad_state.status_code == 400
    assert "Select a valid choice" in bad_state.content.decode()
    bad_limit = client.post(url("probe_run_start", campaign.slug), {"limit": "0"})
    assert bad_limit.status_code == 400
    assert "greater than or equal to 1" in bad_limit.content.decode()
    assert ProbeRun.objects.count() == 0


def test_an_analyst_probes_fake_relays_and_reads_verdicts_and_transcripts(
    client, alice, campaign, smtp_fake, loopback_only, django_capture_on_commit_callbacks
):
    open_relay = smtp_fake("127.0.0.41", open_relay=True)
    closed_relay = smtp_fake("127.0.0.42", open_relay=False)
    feed = Feed.objects.create(name="lab.txt")
    feed_import = FeedImport.objects.create(campaign=campaign, feed=feed, source="lab.txt",
                                            kind=kinds.RELAY)
    for line_no, (ip, port) in enumerate([("127.0.0.41", open_relay.port),
                                          ("127.0.0.42", closed_relay.port),
                                          ("127.0.0.43", closed_port("127.0.0.43"))], 1):
        host = Host.objects.create(campaign=campaign, ip=ip, kinds=kinds.RELAY)
        Sighting.objects.create(host=host, feed_import=feed_import, line_no=line_no,
                                seen_at=host.first_seen, port=port, kind=kinds.RELAY)
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url("probe_run_start", campaign.slug))
    run = ProbeRun.objects.get()
    assert run.status == ProbeRun.DONE
    assert run.by_verdict == {"open": 1, "not_open": 1, "unreachable": 1, "error": 0}
    assert {host for host, _port in loopback_only} == {"127.0.0.41", "127.0.0.42", "127.0.0.43"}

    page = client.get(response["Location"])
    body = page.content.decode()
    rows = {r.host.ip: r.verdict for r in page.context["results_page"]}
    assert rows == {"127.0.0.41": "open", "127.0.0.42": "not_open", "127.0.0.43": "unreachable"}
    assert "probed=3 open=1 not_open=1 unreachable=1 error=0" in body
    assert f'href="{url("host_detail", campaign.slug, "127.0.0.41")}"' in body
    assert "job-progress.js" not in body  # finished: nothing to poll

    host_page = client.get(url("host_detail", campaign.slug, "127.0.0.41")).content.decode()
    probe = host_page.split('data-verdict="open"', 1)[1].split("</li>", 1)[0]
    assert f"on port <strong>{open_relay.port}</strong>" in probe
    assert "<code>plain</code>" in probe
    assert "RCPT TO:&lt;" in probe  # the transcript, escaped
    assert "<details>" in probe and '<pre class="transcript">' in probe

    campaign_page = client.get(url("campaign_detail", campaign.slug)).content.decode()
    assert "probed=3 open=1 not_open=1 unreachable=1 error=0" in campaign_page
    assert f'href="{url("probe_run_detail", campaign.slug, run.pk)}"' in campaign_page


# --- watching a run -----------------------------------------------------------------------


def test_the_status_endpoint_reports_progress_and_counts_by_verdict(client, rita, campaign):
    hosts = add_hosts(campaign, 4)
    run = recorded_run(campaign, hosts[:2], status=ProbeRun.RUNNING)
    ProbeRun.objects.filter(pk=run.pk).update(total=4)
    client.force_login(rita)  # reviewers may watch, not start
    response = client.get(url("probe_run_status", campaign.slug, run.pk))
    assert response["Cache-Control"] == "no-store"
    data = response.json()
    assert data["status"] == "running" and data["status_label"] == "Running"
    assert data["finished"] is False
    assert (data["done"], data["total"], data["percent"]) == (2, 4, 50)
    assert data["by_verdict"] == {"open": 1, "not_open": 1, "unreachable": 0, "error": 0}
    assert data["summary"] == "probed=2 open=1 not_open=1 unreachable=0 error=0"


def test_a_run_of_another_campaign_is_not_found(client, alice, campaign):
    from campaign.services import create_campaign

    other = create_campaign(slug="other", agency_name="FTC", kinds="relay")
    run = recorded_run(campaign, add_hosts(campaign, 1))
    client.force_login(alice)
    assert client.get(url("probe_run_detail", other.slug, run.pk)).status_code == 404
    assert client.get(url("probe_run_status", other.slug, run.pk)).status_code == 404


def test_a_user_without_a_role_gets_403_from_the_run_pages(client, campaign, django_user_model):
    run = recorded_run(campaign, add_hosts(campaign, 1))
    nobody = django_user_model.objects.create_user("mallory", password="x-irrelevant-1")
    client.force_login(nobody)
    for path in (url("probe_run_detail", campaign.slug, run.pk),
                 url("probe_run_status", campaign.slug, run.pk),
                 url("probe_run_start", campaign.slug)):
        assert client.get(path).status_code == 403, path


def test_the_run_page_costs_the_same_queries_for_three_or_sixty_results(client, alice,
                                                                         campaign):
    client.force_login(alice)
    small_run = recorded_run(campaign, add_hosts(campaign, 3))
    large_run = recorded_run(campaign, add_hosts(campaign, 60, start=1000),
                             verdicts=("open", "not_open", "unreachable", "error"))
    client.get(url("probe_run_detail", campaign.slug, small_run.pk))  # warm the session
    with CaptureQueriesContext(connection) as small:
        first = client.get(url("probe_run_detail", campaign.slug, small_run.pk))
    with CaptureQueriesContext(connection) as large:
        second = client.get(url("probe_run_detail", campaign.slug, large_run.pk))
    assert len(first.context["results_page"].object_list) == 3
    assert len(second.context["results_page"].object_list) == 50
    assert len(large.captured_queries) == len(small.captured_queries)
    result_reads = [q["sql"] for q in large.captured_queries
                    if 'FROM "probes_proberesult"' in q["sql"]]
    assert len(result_reads) == 2  # the page count and the page itself, hosts joined
    assert all("transcript" not in sql for sql in result_reads)


def test_the_run_results_are_paginated_and_filtered_by_verdict(client, alice, campaign):
    hosts = add_hosts(campaign, 60)
    run = recorded_run(campaign, hosts, verdicts=("open", "not_open", "unreachable"))
    client.force_login(alice)
    detail = url("probe_run_detail", campaign.slug, run.pk)
    first = client.get(detail).content.decode()
    assert "Page 1 of 2" in first
    assert 'data-ip="11.0.0.49"' in first and 'data-ip="11.0.0.50"' not in first
    second = client.get(detail, {"page": 2}).content.decode()
    assert 'data-ip="11.0.0.50"' in second and 'data-ip="11.0.0.59"' in second
    only_open = client.get(detail, {"verdict": "open"})
    verdicts = {r.verdict for r in only_open.context["results_page"]}
    assert verdicts == {"open"} and only_open.context["results_page"].paginator.count == 20
    assert "20 checks with verdict “Open”" in only_open.content.decode()
    # A verdict that does not exist is ignored rather than an error.
    assert client.get(detail, {"verdict": "pwned"}).context["results_page"].paginator.count == 60


def test_a_running_run_page_polls_and_a_finished_one_does_not(client, alice, campaign):
    hosts = add_hosts(campaign, 2)
    running = recorded_run(campaign, hosts[:1], status=ProbeRun.RUNNING)
    client.force_login(alice)
    page = client.get(url("probe_run_detail", campaign.slug, running.pk)).content.decode()
    assert "job-progress.js" in page
    assert f'data-status-url="{url("probe_run_status", campaign.slug, running.pk)}"' in page
    campaign_page = client.get(url("campaign_detail", campaign.slug)).content.decode()
    assert "job-progress.js" in campaign_page
    ProbeRun.objects.filter(pk=running.pk).update(status=ProbeRun.DONE)
    page = client.get(url("probe_run_detail", campaign.slug, running.pk)).content.decode()
    assert "job-progress.js" not in page and "data-status-url" not in page


def test_the_campaign_page_costs_no_more_queries_with_probe_runs(client, alice, campaign):
    client.force_login(alice)
    client.get(url("campaign_detail", campaign.slug))
    with CaptureQueriesContext(connection) as before:
        client.get(url("campaign_detail", campaign.slug))
    for _ in range(3):
        recorded_run(campaign, add_hosts(campaign, 5, start=_ * 10))
    with CaptureQueriesContext(connection) as after:
        client.get(url("campaign_detail", campaign.slug))
    assert len(after.captured_queries) == len(before.captured_queries)


# --- the host page's evidence -------------------------------------------------------------


def test_the_host_page_shows_each_probe_with_its_transcript_escaped(client, alice, campaign):
    host = add_hosts(campaign, 1)[0]
    recorded_run(campaign, [host], verdicts=("not_open",),
                 transcript="S: 554 <script>alert(1)</script> denied")
    recorded_run(campaign, [host], verdicts=("open",), transcript="S: 250 2.1.5 Ok")
    client.force_login(alice)
    body = client.get(url("host_detail", campaign.slug, host.ip)).content.decode()
    assert "<script>alert(1)</script>" not in body
    assert "S: 554 &lt;script&gt;alert(1)&lt;/script&gt; denied" in body
    probes = re.findall(r'<li class="probe" data-check="(\w+)" data-port="(\d+)" '
                        r'data-verdict="(\w+)"', body)
    assert probes == [("smtp_relay", "25", "open"), ("smtp_relay", "25", "not_open")]
    assert "SMTP relay" in body and "<code>plain</code>" in body
    assert "120 ms" in body


def test_a_host_never_probed_says_so(client, alice, campaign):
    host = add_hosts(campaign, 1)[0]
    client.force_login(alice)
    body = client.get(url("host_detail", campaign.slug, host.ip)).content.decode()
    assert "Not probed yet." in body
