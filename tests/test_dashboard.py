"""The campaign dashboard (funnel, charts, open work) and the agencies & templates pages."""

import datetime as dt
import ipaddress

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from campaign import dashboard, kinds, states
from campaign.hosts import transition_host, transition_hosts
from campaign.models import Agency, AuditEvent, Feed, FeedImport, Host
from letters.models import Batch, Letter, LetterHost, LetterTemplate
from letters.rendering import TEMPLATE_DIR
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 11, 20)
NOON = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def fresh_cache():
    # The cache is a real Redis shared between runs: start each test from nothing.
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def ada(agency):
    """An admin of the campaign's agency."""
    return make_user("ada", "admin", agency_name=agency.name)


def add_hosts(campaign, count, *, start=0, state=states.IMPORTED, country="", **fields):
    base = int(ipaddress.ip_address("11.0.0.0"))
    return Host.objects.bulk_create([
        Host(campaign=campaign, ip=str(ipaddress.ip_address(base + start + i)), state=state,
             kinds=kinds.RELAY, country=country, **fields)
        for i in range(count)
    ])


def add_letter(campaign, batch, hosts, *, state, sent_at=None, dropped=False):
    letter = Letter.objects.create(batch=batch, campaign=campaign, state=state,
                                   email="abuse@example.net", subject="s", body_text="t",
                                   body_html="<p>h</p>", sent_at=sent_at)
    LetterHost.objects.bulk_create(
        [LetterHost(letter=letter, host=h, dropped=dropped) for h in hosts])
    return letter


def page(client, user, campaign):
    client.force_login(user)
    return client.get(reverse("campaign_detail", args=[campaign.slug]))


# --- the funnel ------------------------------------------------------------------------------


def test_the_funnel_counts_hosts_that_got_at_least_that_far_through_the_letters(
    client, alice, bob, campaign
):
    add_hosts(campaign, 4, state=states.IMPORTED)
    add_hosts(campaign, 2, start=10, state=states.NOT_OPEN)
    add_hosts(campaign, 1, start=20, state=states.VERIFIED_OPEN)
    queued_hosts = add_hosts(campaign, 2, start=30, state=states.CONTACT_RESOLVED)
    sent_hosts = add_hosts(campaign, 3, start=40, state=states.NOTIFIED)
    delivered = add_hosts(campaign, 1, start=50, state=states.NOTIFIED)
    fixed = add_hosts(campaign, 1, start=60, state=states.REMEDIATED)
    batch = Batch.objects.create(campaign=campaign, created_by=bob, state="sent")
    add_letter(campaign, batch, queued_hosts, state="queued")
    add_letter(campaign, batch, sent_hosts[:2], state="sent", sent_at=NOON)
    add_letter(campaign, batch, sent_hosts[2:], state="bounced", sent_at=NOON)
    # One host on two letters: counted once, at its furthest step.
    add_letter(campaign, batch, delivered + fixed, state="replied", sent_at=NOON)
    add_letter(campaign, batch, delivered, state="draft")
    # Draft, cancelled and dropped links are not "approved".
    add_letter(campaign, batch, add_hosts(campaign, 1, start=70), state="cancelled")
    add_letter(campaign, batch, add_hosts(campaign, 1, start=80), state="queued", dropped=True)

    response = page(client, alice, campaign)
    funnel = {s.key: (s.count, s.percent) for s in response.context["counts"].funnel}
    assert list(funnel) == ["imported", "verified_open", "contact_found", "approved", "sent",
                            "delivered", "remediated"]
    assert funnel == {
        "imported": (16, 100.0),
        "verified_open": (8, 50.0),
        "contact_found": (7, 43.8),
        "approved": (7, 43.8),
        "sent": (5, 31.2),
        "delivered": (2, 12.5),
        "remediated": (1, 6.2),
    }
    body = response.content.decode()
    assert 'data-step="delivered"' in body and "(12.5%)" in body


# --- charts ---------------------------------------------------------------------------------


def test_letters_sent_per_day_counts_by_utc_day_and_fills_quiet_days_with_zero(bob, campaign):
    batch = Batch.objects.create(campaign=campaign, created_by=bob, state="sent")
    host = add_hosts(campaign, 1)
    for at in (NOON, NOON.replace(hour=23, minute=59),
               # 00:30 in Berlin on the 20th is still the 19th in UTC.
               dt.datetime(2026, 11, 20, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))),
               NOON - dt.timedelta(days=3), NOON - dt.timedelta(days=400)):
        add_letter(campaign, batch, host, state="delivered", sent_at=at)
    add_letter(campaign, batch, host, state="queued")  # not sent: no sent_at

    series = dashboard.letters_sent_per_day(campaign, end=DAY, days=5)
    assert series == [(dt.date(2026, 11, 16), 0), (dt.date(2026, 11, 17), 1),
                      (dt.date(2026, 11, 18), 0), (dt.date(2026, 11, 19), 1),
                      (dt.date(2026, 11, 20), 2)]


def test_the_remediation_curve_is_cumulative_and_starts_with_the_hosts_fixed_before(campaign):
    def fixed_on(day, count, start):
        at = dt.datetime.combine(day, dt.time(9), tzinfo=dt.UTC)
        add_hosts(campaign, count, start=start, state=states.REMEDIATED, remediated_at=at)

    fixed_on(DAY - dt.timedelta(days=100), 3, 0)  # long before the window
    fixed_on(DAY - dt.timedelta(days=2), 2, 10)
    fixed_on(DAY, 1, 20)
    # Re-opened hosts (back to verified_open) no longer count as remediated.
    add_hosts(campaign, 5, start=30, state=states.VERIFIED_OPEN,
              remediated_at=NOON - dt.timedelta(days=1))

    curve = dashboard.remediation_curve(campaign, end=DAY, days=4)
    assert curve == [(dt.date(2026, 11, 17), 3), (dt.date(2026, 11, 18), 5),
                     (dt.date(2026, 11, 19), 5), (dt.date(2026, 11, 20), 6)]


def test_hosts_by_country_lists_the_top_countries_and_sums_the_rest_as_other(campaign):
    codes = ["DE", "FR", "US", "BR", "CN", "IN", "JP", "KR", "NL", "PL", "RU", "SE", "TR", "VN"]
    start = 0
    for rank, code in enumerate(codes):
        add_hosts(campaign, 20 - rank, start=start, country=code)
        start += 100
    add_hosts(campaign, 2, start=start, country="DE", state=states.NOTIFIED)
    add_hosts(campaign, 1, start=start + 10, country="")  # unknown country

    rows = dashboard.countries_from(dashboard.snapshot(campaign))
    assert [r.country for r in rows] == codes[:12] + ["Other"]
    de = rows[0]
    assert de.total == 22
    assert de.by_state[states.HOST_STATES.index(states.NOTIFIED)] == 2
    assert de.by_state[states.HOST_STATES.index(states.IMPORTED)] == 20
    # TR (8), VN (7) and the unknown host (1) are "Other".
    assert rows[-1].total == 16 and sum(rows[-1].by_state) == 16


def test_each_chart_has_a_data_table_with_the_same_numbers(client, alice, bob, campaign):
    add_hosts(campaign, 3, country="DE")
    add_hosts(campaign, 2, start=10, country="FR", state=states.REMEDIATED,
              remediated_at=dt.datetime.now(dt.UTC))
    batch = Batch.objects.create(campaign=campaign, created_by=bob, state="sent")
    add_letter(campaign, batch, add_hosts(campaign, 1, start=20, country="DE"), state="sent",
               sent_at=dt.datetime.now(dt.UTC))
    body = page(client, alice, campaign).content.decode()
    for chart, table in (("sent", "sent-table"), ("remediated", "remediated-table"),
                         ("countries", "countries-table")):
        assert f'data-chart="{chart}" data-source="{table}"' in body
        assert f'<table class="compact" id="{table}">' in body
    today = dt.datetime.now(dt.UTC).date().isoformat()
    sent_table = body.split('id="sent-table"', 1)[1].split("</table>", 1)[0]
    assert f'<time datetime="{today}">{today}</time></th><td class="num">1</td>' in sent_table
    assert sent_table.count("<tr>") == dashboard.DAYS + 1  # header + one row per day
    curve = body.split('id="remediated-table"', 1)[1].split("</table>", 1)[0]
    assert f'{today}</time></th><td class="num">2</td>' in curve
    countries = body.split('id="countries-table"', 1)[1].split("</table>", 1)[0]
    de = countries.split('data-country="DE"', 1)[1].split("</tr>", 1)[0]
    assert '<td class="num">4</td>' in de
    assert "static/vendor/chartjs/chart.umd.min.js" in body  # served locally, no CDN
    assert "cdn" not in body.lower()


def test_the_effect_chart_plots_notified_against_control_from_its_data_table(
    client, alice, bob, campaign
):
    from letters.models import ContactDraw, ControlHost

    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=100)
    batch = Batch.objects.create(campaign=campaign, created_by=bob, state="sent")
    # Notified: 4 hosts, one closed after 10 days and one after 40 (KM: 25 %, then 50 %).
    for i, fixed in enumerate((10, 40, None, None)):
        extra = {} if fixed is None else {
            "state": states.REMEDIATED, "remediated_at": start + dt.timedelta(days=fixed)}
        add_letter(campaign, batch, add_hosts(campaign, 1, start=i, country="DE",
                                              **{"state": states.NOTIFIED, **extra}),
                   state="sent", sent_at=start)
    # Control: 4 hosts never written to, one found closed after 50 days (25 %).
    draw = ContactDraw.objects.create(campaign=campaign, email="held@example.net",
                                      held_out=True, bucket=0.01, percent=10, reason="test")
    for i, host in enumerate(add_hosts(campaign, 4, start=100, country="DE",
                                       state=states.CONTACT_RESOLVED)):
        ControlHost.objects.create(campaign=campaign, host=host, draw=draw, since=start,
                                   remediated_at=start + dt.timedelta(days=50) if i == 0
                                   else None)
    body = page(client, alice, campaign).content.decode()
    assert 'data-chart="effect" data-source="effect-table"' in body
    table = body.split('id="effect-table"', 1)[1].split("</table>", 1)[0]
    assert '<th scope="col" class="num" data-series="notified">' in table
    assert '<th scope="col" class="num" data-series="control">' in table
    rows = [r.split("</tr>", 1)[0] for r in table.split("<tbody>", 1)[1].split("<tr>")[1:]]
    cells = [[c.split("<", 1)[0] for c in r.replace('<th scope="row">', "<td>").split(
        '<td class="num">')[1:]] for r in rows]
    days = [r.split('<th scope="row">', 1)[1].split("<", 1)[0] for r in rows]
    assert days == ["0", "10", "40", "50"]
    assert cells == [["0.0", "0.0"], ["25.0", "0.0"], ["50.0", "0.0"], ["50.0", "25.0"]]


def test_there_is_no_effect_chart_without_a_control_group(client, alice, bob, campaign):
    batch = Batch.objects.create(campaign=campaign, created_by=bob, state="sent")
    add_letter(campaign, batch, add_hosts(campaign, 2, country="DE", state=states.NOTIFIED),
               state="sent", sent_at=dt.datetime.now(dt.UTC))
    body = page(client, alice, campaign).content.decode()
    assert "effect-table" not in body and 'data-chart="effect"' not in body


def test_the_dashboard_costs_the_same_queries_for_a_small_or_a_large_campaign(
    client, alice, bob, campaign
):
    add_hosts(campaign, 5, country="DE")
    client.force_login(alice)
    client.get(reverse("campaign_detail", args=[campaign.slug]))  # warm the session
    with CaptureQueriesContext(connection) as small:
        client.get(reverse("campaign_detail", args=[campaign.slug]))
    codes = [f"{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(60)]
    for i, code in enumerate(codes):
        add_hosts(campaign, 10, start=1000 + 100 * i, country=code,
                  state=states.REMEDIATED if i % 2 else states.NOTIFIED,
                  remediated_at=NOON - dt.timedelta(days=i))
    batch = Batch.objects.create(campaign=campaign, created_by=bob, state="sent")
    hosts = list(Host.objects.filter(campaign=campaign, state=states.NOTIFIED))
    for i in range(0, len(hosts), 3):
        add_letter(campaign, batch, hosts[i:i + 3], state="delivered",
                   sent_at=NOON - dt.timedelta(days=i % 40))
    with CaptureQueriesContext(connection) as large:
        response = client.get(reverse("campaign_detail", args=[campaign.slug]))
    assert response.context["counts"].total == 605
    assert len(response.context["countries"]) == dashboard.TOP_COUNTRIES + 1
    assert len(large.captured_queries) == len(small.captured_queries)


def test_the_open_work_panel_lists_running_imports_probe_runs_contact_runs_and_reviews(
    client, alice, bob, campaign
):
    from probes.contacts.models import ContactRun
    from probes.verification.models import ProbeRun

    feed = Feed.objects.create(name="relays.txt")
    running = FeedImport.objects.create(campaign=campaign, feed=feed, source="relays.txt",
                                        kind=kinds.RELAY, status=FeedImport.RUNNING)
    FeedImport.objects.create(campaign=campaign, feed=feed, source="old.txt", kind=kinds.RELAY,
                              status=FeedImport.DONE)
    probe = ProbeRun.objects.create(campaign=campaign, status="running", total=10, done=4)
    ProbeRun.objects.create(campaign=campaign, status="done")
    contact = ContactRun.objects.create(campaign=campaign, status="queued", hosts_total=3)
    Batch.objects.create(campaign=campaign, created_by=bob, state="submitted")
    response = page(client, alice, campaign)
    work = response.content.decode().split('id="open-work"', 1)[1].split("</section>", 1)[0]
    assert f"Import #{running.pk} relays.txt" in work and "old.txt" not in work
    assert f"Probe run #{probe.pk}</a>" in work and "4/10 hosts" in work
    assert f"Contact run #{contact.pk}</a>" in work
    assert "<strong>1</strong> batch awaiting review" in work
    assert work.count("<li") == 4


def test_the_open_work_panel_says_so_when_nothing_is_running(client, alice, campaign):
    body = page(client, alice, campaign).content.decode()
    assert "Nothing running and no batch awaiting review." in body


# --- the counts cache ------------------------------------------------------------------------


@pytest.fixture
def cache_everything(settings):
    settings.DASHBOARD_CACHE_MIN_HOSTS = 1


def host_queries(ctx):
    return [q for q in ctx.captured_queries if '"campaign_host"' in q["sql"]]


def test_a_large_campaigns_counts_come_from_the_cache_until_a_host_moves(
    client, alice, campaign, cache_everything, django_capture_on_commit_callbacks
):
    hosts = add_hosts(campaign, 3)
    client.force_login(alice)
    url = reverse("campaign_detail", args=[campaign.slug])
    assert client.get(url).context["dashboard_cached"] is False
    with CaptureQueriesContext(connection) as cached:
        response = client.get(url)
    assert host_queries(cached) == []
    assert response.context["dashboard_cached"] is True
    assert "Counts may be up to a minute old." in response.content.decode()

    # The cached counts are dropped once the move commits (campaign.signals.hosts_changed).
    with django_capture_on_commit_callbacks(execute=True):
        transition_host(hosts[0], states.VERIFIED_OPEN)
    # The page does not wait for the recount: it shows the last count, says so, and a
    # worker (eager here) recounts; the next view has the new figures.
    response = client.get(url)
    assert response.context["dashboard_stale"] is True
    assert "while it is being updated" in response.content.decode()
    assert {s.key: s.count for s in response.context["counts"].funnel}["verified_open"] == 0
    response = client.get(url)
    assert response.context["dashboard_stale"] is False
    assert {s.key: s.count for s in response.context["counts"].funnel}["verified_open"] == 1

    with django_capture_on_commit_callbacks(execute=True):
        transition_hosts([h.pk for h in hosts[1:]], states.UNREACHABLE)  # bulk: every campaign
    client.get(url)
    by_state = {row.state: row.count for row in client.get(url).context["counts"].by_state}
    assert by_state[states.UNREACHABLE] == 2


def test_the_cached_counts_are_dropped_once_the_move_commits_not_before(
        client, alice, campaign, cache_everything, django_capture_on_commit_callbacks):
    hosts = add_hosts(campaign, 1)
    client.force_login(alice)
    url = reverse("campaign_detail", args=[campaign.slug])
    client.get(url)
    with django_capture_on_commit_callbacks() as on_commit:
        transition_host(hosts[0], states.VERIFIED_OPEN)
        # Not committed yet: a recount now would cache the old state again.
        assert client.get(url).context["dashboard_cached"] is True
    for callback in on_commit:
        callback()  # the commit: campaign.signals.hosts_changed reaches the dashboard
    assert client.get(url).context["dashboard_stale"] is True
    funnel = {s.key: s.count for s in client.get(url).context["counts"].funnel}
    assert funnel["verified_open"] == 1


def test_one_recount_at_a_time_while_the_last_count_is_shown(
        client, alice, campaign, cache_everything, django_capture_on_commit_callbacks):
    from django.core.cache import cache

    hosts = add_hosts(campaign, 2)
    client.force_login(alice)
    url = reverse("campaign_detail", args=[campaign.slug])
    client.get(url)
    cache.add(dashboard._lock_key(campaign.pk), 1, 60)  # a worker is already recounting
    with django_capture_on_commit_callbacks(execute=True):
        transition_host(hosts[0], states.VERIFIED_OPEN)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.context["dashboard_stale"] is True
    assert host_queries(ctx) == []  # neither counted here nor queued a second time
    dashboard.refresh(campaign.pk)  # the worker finishes
    assert cache.get(dashboard._lock_key(campaign.pk)) is None
    funnel = {s.key: s.count for s in client.get(url).context["counts"].funnel}
    assert funnel["verified_open"] == 1


def test_a_last_count_too_old_is_recounted_in_the_request(
        client, alice, campaign, settings, cache_everything, django_capture_on_commit_callbacks):
    settings.DASHBOARD_STALE_SECONDS = 0  # e.g. no worker has refreshed it for a long time
    hosts = add_hosts(campaign, 2)
    client.force_login(alice)
    url = reverse("campaign_detail", args=[campaign.slug])
    client.get(url)
    with django_capture_on_commit_callbacks(execute=True):
        transition_host(hosts[0], states.VERIFIED_OPEN)
    response = client.get(url)
    assert response.context["dashboard_stale"] is False
    assert response.context["dashboard_cached"] is False
    assert {s.key: s.count for s in response.context["counts"].funnel}["verified_open"] == 1


def test_a_finished_import_drops_the_cached_counts(
        client, alice, campaign, feeds_dir, cache_everything, django_capture_on_commit_callbacks):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from campaign.imports import create_import, run_import

    add_hosts(campaign, 1)
    client.force_login(alice)
    url = reverse("campaign_detail", args=[campaign.slug])
    assert client.get(url).context["counts"].total == 1
    upload = SimpleUploadedFile("plain-ips.txt", (feeds_dir / "plain-ips.txt").read_bytes())
    feed_import = create_import(campaign=campaign, actor=alice, source="plain-ips.txt",
                                fmt="auto", kind="relay", upload=upload)
    with django_capture_on_commit_callbacks(execute=True):
        run_import(feed_import.pk)
    client.get(url)  # the last count, while the worker recounts
    assert client.get(url).context["counts"].total == 147


def test_small_campaigns_are_always_counted_afresh(client, alice, campaign):
    add_hosts(campaign, 2)
    client.force_login(alice)
    url = reverse("campaign_detail", args=[campaign.slug])
    client.get(url)
    add_hosts(campaign, 3, start=10)  # written behind the services' back: no invalidation
    response = client.get(url)
    assert response.context["dashboard_cached"] is False
    assert response.context["counts"].total == 5


# --- agency settings -------------------------------------------------------------------------


def test_only_the_admin_role_may_open_agency_settings(client, agency, alice, bob, rita, ada):
    for user in (alice, bob, rita):
        client.force_login(user)
        for path in (reverse("agency_list"), reverse("agency_settings", args=[agency.pk]),
                     reverse("template_edit", args=["first_notice.subject.txt"])):
            assert client.get(path).status_code == 403, (user, path)
        assert client.post(reverse("agency_settings", args=[agency.pk]),
                           {"sender_email": "evil@example.net"}).status_code == 403
        assert client.post(reverse("template_preview", args=["first_notice.subject.txt"]),
                           {"source": "x"}).status_code == 403
    agency.refresh_from_db()
    assert agency.sender_email == "secureyourserver@ftc.example"
    client.force_login(ada)
    assert client.get(reverse("agency_list")).status_code == 200
    assert "Agencies &amp; templates" in client.get(reverse("agency_list")).content.decode()


def test_an_admin_saves_the_letterhead_and_links_and_the_change_is_audited(client, agency, ada):
    client.force_login(ada)
    path = reverse("agency_settings", args=[agency.pk])
    body = client.get(path).content.decode()
    assert '<label for="id_letterhead">' in body and '<label for="id_reply_to">' in body
    response = client.post(path, {
        "letterhead": "Federal Trade Commission\n600 Pennsylvania Ave",
        "sender_email": "secureyourserver@ftc.example", "reply_to": "replies@ftc.example",
        "signature": "The FTC team", "info_url": "https://ftc.example/sys",
        "instructions_url": "https://ftc.example/sys/howto", "default_language": "es",
    })
    assert response.status_code == 302
    agency.refresh_from_db()
    assert agency.reply_to == "replies@ftc.example" and agency.default_language == "es"
    event = AuditEvent.objects.get(action="agency.update")
    assert event.actor == ada and event.object_id == str(agency.pk)
    assert set(event.data["changed"]) == {"letterhead", "reply_to", "signature", "info_url",
                                          "instructions_url", "default_language"}


def test_agency_settings_reject_a_bad_address_and_an_unknown_language(client, agency, ada):
    client.force_login(ada)
    response = client.post(reverse("agency_settings", args=[agency.pk]), {
        "sender_email": "not an address", "default_language": "xx"})
    assert response.status_code == 400
    assert AuditEvent.objects.filter(action="agency.update").count() == 0


def test_an_agency_admin_cannot_see_another_agencys_settings(client, agency, ada):
    other = Agency.objects.create(name="Another Regulator")
    client.force_login(ada)
    assert client.get(reverse("agency_settings", args=[other.pk])).status_code == 404
    assert "Another Regulator" not in client.get(reverse("agency_list")).content.decode()


# --- letter templates ------------------------------------------------------------------------

SUBJECT = "first_notice.subject.txt"
INJECTIONS = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ agency.__class__ }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ lipsum.__globals__['os'].system('touch /tmp/pwned-by-template') }}",
    "{% for x in hosts %}{{ x.update({'ip': 'changed'}) }}{% endfor %}",
]


def preview(client, name, source, language="en"):
    return client.post(reverse("template_preview", args=[name]),
                       {"source": source, "language": language})


def test_the_template_editor_shows_the_shipped_source_and_a_rendered_preview(client, ada):
    client.force_login(ada)
    response = client.get(reverse("template_edit", args=["first_notice.body.html"]))
    assert response.status_code == 200
    body = response.content.decode()
    shipped = (TEMPLATE_DIR / "first_notice.body.html").read_text()
    assert response.context["form"].initial["source"] == shipped
    assert 'sandbox="" referrerpolicy="no-referrer"' in body
    assert "192.0.2.25" in response.context["preview"].html  # the sample letter's host


def test_the_live_preview_renders_a_draft_without_saving_it(client, ada):
    client.force_login(ada)
    response = preview(client, SUBJECT, "Open server at {{ ips }} — {{ agency.name }}")
    assert response.status_code == 200
    data = response.json()
    assert data["ok"] is True
    # Ada's agency signs the sample letter.
    assert data["subject"] == "Open server at 192.0.2.25, 192.0.2.80 — Federal Trade Commission"
    assert "<html" in data["html"].lower()
    assert not LetterTemplate.objects.exists()


def test_the_preview_needs_the_csrf_token(ada):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(ada)
    response = strict.post(reverse("template_preview", args=[SUBJECT]), {"source": "x"})
    assert response.status_code == 403


@pytest.mark.parametrize("source", INJECTIONS)
def test_template_injection_is_an_error_and_never_runs(client, ada, source, tmp_path):
    client.force_login(ada)
    response = preview(client, SUBJECT, source)
    assert response.status_code == 400
    data = response.json()
    assert data["ok"] is False and data["error"]
    assert "<class" not in data["error"] and "uid=" not in data["error"]
    # Saving it is refused with the same kind of message, as a form error (not a 500).
    response = client.post(reverse("template_edit", args=[SUBJECT]), {"source": source})
    assert response.status_code == 400
    errors = response.context["form"].errors["source"]
    assert errors and ("Not allowed" in errors[0] or "does not render" in errors[0])
    assert not LetterTemplate.objects.exists()
    assert not (tmp_path.parent / "pwned-by-template").exists()
    import pathlib

    assert not pathlib.Path("/tmp/pwned-by-template").exists()


def test_a_security_error_is_named_as_such(client, ada):
    client.force_login(ada)
    error = preview(client, SUBJECT, "{{ ''.__class__.__mro__ }}").json()["error"]
    assert error.startswith("Not allowed in a letter template")


def test_a_syntax_error_is_shown_with_its_line(client, ada):
    client.force_login(ada)
    data = preview(client, "first_notice.body.txt", "Hello\n{% if %}\n").json()
    assert data["ok"] is False
    assert "(line 2)" in data["error"] and "TemplateSyntaxError" in data["error"]
    response = client.post(reverse("template_edit", args=["first_notice.body.txt"]),
                           {"source": "Hello\n{% if %}\n"})
    assert response.status_code == 400
    assert "(line 2)" in response.content.decode()


def test_an_undefined_variable_is_an_error_not_an_empty_string(client, ada):
    client.force_login(ada)
    data = preview(client, SUBJECT, "{{ no_such_thing }}").json()
    assert data["ok"] is False and "no_such_thing" in data["error"]


def test_an_admin_saves_a_template_and_the_preview_uses_it(client, ada):
    client.force_login(ada)
    source = "Action needed: {{ ips }}"
    response = client.post(reverse("template_edit", args=[SUBJECT]), {"source": source})
    assert response.status_code == 302
    saved = LetterTemplate.objects.get(name=SUBJECT)
    assert saved.source == source and saved.updated_by == ada
    assert AuditEvent.objects.filter(action="letters.template", actor=ada).exists()
    # The body's preview is rendered with the saved subject.
    data = preview(client, "first_notice.body.txt",
                   (TEMPLATE_DIR / "first_notice.body.txt").read_text()).json()
    assert data["subject"] == "Action needed: 192.0.2.25, 192.0.2.80"


def test_an_unknown_template_name_is_a_404(client, ada):
    client.force_login(ada)
    assert client.get(reverse("template_edit", args=["settings.py"])).status_code == 404
    assert client.get("/templates/..%2Fsettings.py/").status_code == 404
    assert preview(client, "nope.txt", "x").status_code == 404
