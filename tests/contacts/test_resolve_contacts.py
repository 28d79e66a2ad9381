"""resolve_contacts, set_contact, suppress and refresh_rdap_bootstrap against loopback fakes."""

import io
import json
import re
import time
from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from campaign import states
from campaign.models import AuditEvent, Host
from probes.contacts import bootstrap, selectors
from probes.contacts.models import Contact, ContactOverride, ContactRun, NetworkRecord, Suppression
from tests.contacts.fakes import Reply


def add_host(campaign, ip, state=states.VERIFIED_OPEN, country=""):
    return Host.objects.create(campaign=campaign, ip=ip, state=state, country=country)


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip().splitlines()[-1]


def state_of(campaign, ip):
    return Host.objects.get(campaign=campaign, ip=ip).state


def test_it_resolves_verified_hosts_and_prints_the_summary(registries, campaign):
    add_host(campaign, "82.44.79.141")
    add_host(campaign, "99.232.84.14")
    add_host(campaign, "179.231.41.242")
    add_host(campaign, "8.8.4.4", state=states.IMPORTED)  # not verified: left alone
    assert run("resolve_contacts", "--campaign", campaign.slug) == (
        "hosts=3 resolved=3 failed=0 queries=3"
    )
    contact = Contact.objects.get(host__ip="179.231.41.242")
    assert (contact.email, contact.source, contact.confidence, contact.handle) == (
        "abuse@conectividad-andina.example", "rdap", "high", "ABC37")
    assert (contact.country, contact.language) == ("CO", "es")
    assert contact.server.endswith("/lacnic/")
    assert contact.network.cidrs == ["179.231.40.0/22"]
    assert '"lacnic_legalRepresentative"' in contact.network.raw
    assert state_of(campaign, "82.44.79.141") == states.CONTACT_RESOLVED
    assert state_of(campaign, "8.8.4.4") == states.IMPORTED
    assert not Contact.objects.filter(host__ip="8.8.4.4").exists()


def test_one_query_answers_every_host_in_the_network(registries, campaign):
    rdap_fake, _ = registries
    for last in range(1, 101):
        add_host(campaign, f"82.44.77.{last}")
    assert run("resolve_contacts", "--campaign", campaign.slug) == (
        "hosts=100 resolved=100 failed=0 queries=1"
    )
    assert rdap_fake.count("/ripe/") == 1
    assert NetworkRecord.objects.count() == 1


def test_the_cache_serves_later_runs_until_it_expires(registries, campaign):
    rdap_fake, _ = registries
    add_host(campaign, "82.44.79.141")
    run("resolve_contacts", "--campaign", campaign.slug)
    add_host(campaign, "82.44.76.9")
    assert run("resolve_contacts", "--campaign", campaign.slug) == (
        "hosts=1 resolved=1 failed=0 queries=0"
    )
    with time_machine.travel(timezone.now() + timedelta(days=31)):
        assert run("resolve_contacts", "--campaign", campaign.slug, "--all") == (
            "hosts=2 resolved=2 failed=0 queries=1"
        )
    assert rdap_fake.count("/ripe/") == 2


def test_the_cache_lifetime_is_a_setting(registries, campaign, settings):
    settings.CONTACT_CACHE_DAYS = 2
    add_host(campaign, "82.44.79.141")
    run("resolve_contacts", "--campaign", campaign.slug)
    record = NetworkRecord.objects.get()
    assert timedelta(days=1.9) < record.expires_at - record.fetched_at < timedelta(days=2.1)


def test_a_registry_down_keeps_the_host_queued_and_a_later_run_resolves_it(registries, campaign):
    rdap_fake, whois_fake = registries
    rdap_fake.routes["/ripe/ip/82.44.79.141"] = Reply(503, b"")
    whois_fake.stop()
    add_host(campaign, "82.44.79.141")
    assert run("resolve_contacts", "--campaign", campaign.slug) == (
        "hosts=1 resolved=0 failed=1 queries=1"
    )
    contact = Contact.objects.get()
    assert contact.status == Contact.FAILED and contact.attempts == 1
    assert "HTTP 503" in contact.last_error
    assert contact.next_attempt_at > timezone.now()
    assert state_of(campaign, "82.44.79.141") == states.VERIFIED_OPEN
    assert selectors.contact_counts(campaign) == {"resolved": 0, "failed": 1}
    assert NetworkRecord.objects.count() == 0  # failures are not cached

    del rdap_fake.routes["/ripe/ip/82.44.79.141"]
    rdap_fake.load_fixtures()
    assert run("resolve_contacts", "--campaign", campaign.slug) == (
        "hosts=1 resolved=1 failed=0 queries=1"
    )
    assert state_of(campaign, "82.44.79.141") == states.CONTACT_RESOLVED
    assert selectors.contact_counts(campaign) == {"resolved": 1, "failed": 0}


def test_a_rate_limited_registry_is_not_asked_again_in_the_same_run(registries, campaign):
    rdap_fake, whois_fake = registries
    rdap_fake.routes["/ripe/ip/82.44.79.141"] = Reply(429, b"{}")
    whois_fake.stop()
    add_host(campaign, "82.44.79.141")
    add_host(campaign, "82.44.79.142")
    add_host(campaign, "82.44.79.143")
    assert run("resolve_contacts", "--campaign", campaign.slug) == (
        "hosts=3 resolved=0 failed=3 queries=1"
    )
    assert rdap_fake.count("/ripe/") == 1
    assert "back off" in Contact.objects.get(host__ip="82.44.79.143").last_error


def test_a_network_without_an_address_moves_its_hosts_to_no_contact(registries, campaign):
    _, whois_fake = registries
    whois_fake.answers["iana"]["102.117.125.48"] = whois_fake.answers["iana"]["41.147.116.184"]
    add_host(campaign, "102.117.125.48", country="UG")
    assert run("resolve_contacts", "--campaign", campaign.slug) == (
        "hosts=1 resolved=0 failed=1 queries=3"
    )
    assert state_of(campaign, "102.117.125.48") == states.NO_CONTACT
    assert Contact.objects.get().status == Contact.NO_CONTACT
    assert selectors.host_contact(Host.objects.get(ip="102.117.125.48")) is None


def test_whois_supplies_the_abuse_address_rdap_lacks(registries, campaign):
    add_host(campaign, "41.147.116.184")
    assert run("resolve_contacts", "--campaign", campaign.slug) == (
        "hosts=1 resolved=1 failed=0 queries=3"
    )
    host = Host.objects.get(ip="41.147.116.184")
    assert selectors.host_contact(host) | {"fetched_at": None} == {
        "email": "abuse@savannalink.example",
        "source": "whois",
        "network": "41.147.112.0/21",
        "confidence": "high",
        "language": "en",
        "status": "resolved",
        "organisation": "Savanna Link Networks Ltd",
        "country": "KE",
        "server": registries[1].addr("afrinic"),
        "handle": "SLNR1-AFRINIC",
        "fetched_at": None,
        "suppressed_by": None,
    }
    json.dumps(selectors.host_contact(host))  # ready for --json output


def test_a_suppressed_address_is_not_used(registries, campaign, alice):
    call_command("suppress", "kestrel-fibre.example", "--by", "alice", "--reason",
                 "asked us to stop", stdout=io.StringIO())
    add_host(campaign, "82.44.79.141")
    assert run("resolve_contacts", "--campaign", campaign.slug) == (
        "hosts=1 resolved=0 failed=1 queries=1"
    )
    assert Contact.objects.get().status == Contact.SUPPRESSED
    assert state_of(campaign, "82.44.79.141") == states.NO_CONTACT


def test_suppressing_later_takes_resolved_hosts_out_of_the_queue(registries, campaign, alice):
    add_host(campaign, "99.232.84.14")
    add_host(campaign, "82.44.79.141")
    run("resolve_contacts", "--campaign", campaign.slug)
    assert run("suppress", "abuse@harborline-comms.example", "--by", "alice", "--reason",
               "bounced") == "suppressed=abuse@harborline-comms.example kind=address"
    assert state_of(campaign, "99.232.84.14") == states.NO_CONTACT
    assert state_of(campaign, "82.44.79.141") == states.CONTACT_RESOLVED
    assert selectors.is_suppressed("ABUSE@harborline-comms.example")
    assert not selectors.is_suppressed("other@harborline-comms.example")
    entry = Suppression.objects.get()
    assert (entry.created_by, entry.reason) == (alice, "bounced")


def test_suppress_refuses_junk_and_users_without_the_permission(db, alice, rita):
    with pytest.raises(CommandError, match="neither an e-mail address nor a domain"):
        call_command("suppress", "not a domain", "--by", "alice", "--reason", "x")
    with pytest.raises(CommandError, match="may not"):
        call_command("suppress", "example.org", "--by", "rita", "--reason", "x")
    with pytest.raises(CommandError, match="no user"):
        call_command("suppress", "example.org", "--by", "nobody", "--reason", "x")
    assert Suppression.objects.count() == 0


def test_set_contact_overrides_by_hand_and_later_lookups_keep_it(registries, campaign, alice):
    add_host(campaign, "102.117.125.48")
    _, whois_fake = registries
    whois_fake.answers["iana"]["102.117.125.48"] = whois_fake.answers["iana"]["41.147.116.184"]
    run("resolve_contacts", "--campaign", campaign.slug)
    assert state_of(campaign, "102.117.125.48") == states.NO_CONTACT

    assert run("set_contact", "--campaign", campaign.slug, "--ip", "102.117.125.48",
               "--email", "NOC@Kampala-Wireless.example", "--language", "fr", "--by", "alice",
               "--reason", "phoned their NOC") == (
        "host=102.117.125.48 email=NOC@kampala-wireless.example language=fr source=manual"
    )
    host = Host.objects.get(ip="102.117.125.48")
    assert host.state == states.CONTACT_RESOLVED
    override = ContactOverride.objects.get()
    assert (override.created_by, override.reason) == (alice, "phoned their NOC")
    assert AuditEvent.objects.filter(action="contact.override", actor=alice).exists()

    assert run("resolve_contacts", "--campaign", campaign.slug, "--all") == (
        "hosts=1 resolved=1 failed=0 queries=0"
    )
    contact = selectors.host_contact(host)
    assert (contact["email"], contact["source"], contact["confidence"], contact["language"]) == (
        "NOC@kampala-wireless.example", "manual", "manual", "fr")


def test_set_contact_is_permission_checked_and_validated(registries, campaign, alice, rita):
    add_host(campaign, "82.44.79.141")
    args = ["set_contact", "--campaign", campaign.slug, "--ip", "82.44.79.141"]
    with pytest.raises(CommandError, match="may not set abuse contacts"):
        call_command(*args, "--email", "a@b.example", "--by", "rita", "--reason", "x")
    with pytest.raises(CommandError, match="not a usable e-mail address"):
        call_command(*args, "--email", "nope", "--by", "alice", "--reason", "x")
    with pytest.raises(CommandError, match="unknown letter language"):
        call_command(*args, "--email", "a@b.example", "--language", "xx", "--by", "alice",
                     "--reason", "x")
    with pytest.raises(CommandError, match="has no host 1.2.3.4"):
        call_command("set_contact", "--campaign", campaign.slug, "--ip", "1.2.3.4",
                     "--email", "a@b.example", "--by", "alice", "--reason", "x")
    with pytest.raises(CommandError, match="no campaign"):
        call_command("set_contact", "--campaign", "nope", "--ip", "1.2.3.4",
                     "--email", "a@b.example", "--by", "alice", "--reason", "x")
    assert not Contact.objects.exists()


def test_all_covers_every_host_but_moves_only_those_the_lifecycle_allows(registries, campaign):
    add_host(campaign, "82.44.79.141", state=states.IMPORTED)
    add_host(campaign, "99.232.84.14")
    assert run("resolve_contacts", "--campaign", campaign.slug, "--all") == (
        "hosts=2 resolved=2 failed=0 queries=2"
    )
    assert state_of(campaign, "82.44.79.141") == states.IMPORTED
    assert state_of(campaign, "99.232.84.14") == states.CONTACT_RESOLVED


def test_background_queues_a_run_and_prints_its_job(registries, campaign):
    add_host(campaign, "82.44.79.141")
    line = run("resolve_contacts", "--campaign", campaign.slug, "--background")
    assert line.startswith("job=")
    contact_run = ContactRun.objects.get()
    assert contact_run.task_id == line.removeprefix("job=")
    assert (contact_run.status, contact_run.summary_line) == (
        ContactRun.DONE, "hosts=1 resolved=1 failed=0 queries=1")  # Celery is eager in tests


def test_the_beat_resolves_new_hosts_only_where_the_campaign_automates_it(registries,
                                                                         campaign):
    from campaign.automation import set_policy
    from probes.contacts.tasks import resolve_due_contacts

    add_host(campaign, "82.44.79.141")
    assert resolve_due_contacts() == 0  # off by default: a person starts contact runs
    assert state_of(campaign, "82.44.79.141") == states.VERIFIED_OPEN

    set_policy(campaign, contacts=True)
    assert resolve_due_contacts() == 1
    assert state_of(campaign, "82.44.79.141") == states.CONTACT_RESOLVED
    assert resolve_due_contacts() == 0
    step = AuditEvent.objects.get(action="automation.contact_run")
    assert step.actor is None and step.data == {"by": "system", "mode": "due"}


def test_without_automation_the_beat_still_retries_a_persons_failed_look_ups(registries,
                                                                           campaign):
    from probes.contacts.tasks import resolve_due_contacts

    failed = add_host(campaign, "82.44.79.141")
    add_host(campaign, "99.232.84.10")  # new, never looked up: left for a person
    Contact.objects.create(host=failed, status=Contact.FAILED,
                           next_attempt_at=timezone.now() - timedelta(minutes=1))
    assert resolve_due_contacts() == 1
    assert ContactRun.objects.get().mode == ContactRun.RETRY
    assert state_of(campaign, "82.44.79.141") == states.CONTACT_RESOLVED
    assert not Contact.objects.filter(host__ip="99.232.84.10").exists()


def test_an_unknown_campaign_is_a_clear_error(db):
    with pytest.raises(CommandError, match="there is no campaign 'nope'"):
        call_command("resolve_contacts", "--campaign", "nope")


def test_refresh_stores_the_bootstrap_and_a_failure_keeps_the_previous_one(registries, settings):
    rdap_fake, _ = registries
    stored = bootstrap.bootstrap_dir() / "ipv4.json"
    assert rdap_fake.base("ripe") in stored.read_text()
    assert re.match(r"ipv4=\d+ ipv6=\d+ stored=", run("refresh_rdap_bootstrap"))
    rdap_fake.routes["/bootstrap/ipv6.json"] = Reply(200, b'{"services": 1}')
    with pytest.raises(CommandError, match="not a valid RDAP bootstrap file"):
        call_command("refresh_rdap_bootstrap")
    assert rdap_fake.base("ripe") in stored.read_text()
    settings.RDAP_BOOTSTRAP_URL = "http://127.0.0.1:9/"
    with pytest.raises(CommandError, match="could not fetch"):
        call_command("refresh_rdap_bootstrap")


def test_without_a_refreshed_copy_the_shipped_snapshot_is_used(loopback):
    boot = bootstrap.load_bootstrap()
    assert boot.servers_for("82.44.79.141") == ["https://rdap.db.ripe.net/"]


def test_contact_counts_and_host_contact_for_json(registries, campaign):
    add_host(campaign, "82.44.79.141")
    add_host(campaign, "2a0b:7a5:fe7f:fe21:ec7b:7856:700d:926f")
    run("resolve_contacts", "--campaign", campaign.slug)
    assert selectors.contact_counts(campaign) == {"resolved": 2, "failed": 0}
    v6 = selectors.host_contact(Host.objects.get(ip="2a0b:7a5:fe7f:fe21:ec7b:7856:700d:926f"))
    assert (v6["network"], v6["email"], v6["source"]) == (
        "2a0b:7a5:fe7f::/48", "abuse@kestrel-fibre.example", "rdap")


def test_a_low_confidence_fallback_kept_while_whois_is_down_is_cached_for_a_day_only(
    registries, campaign
):
    _, whois_fake = registries
    whois_fake.stop()
    add_host(campaign, "106.106.231.104")
    assert run("resolve_contacts", "--campaign", campaign.slug) == (
        "hosts=1 resolved=1 failed=0 queries=1"
    )
    contact = Contact.objects.get()
    assert (contact.email, contact.confidence) == ("netops@kauripoint.example", "low")
    record = contact.network
    assert record.expires_at - record.fetched_at == timedelta(days=1)
    assert record.evidence["provisional"] is True


def test_the_beat_fails_a_run_whose_worker_died_and_starts_afresh(registries, campaign):
    from probes.contacts.tasks import resolve_due_contacts

    campaign.auto_resolve_contacts = True
    campaign.save()
    add_host(campaign, "82.44.79.141")
    long_ago = timezone.now() - timedelta(hours=1)
    dead = ContactRun.objects.create(campaign=campaign, mode=ContactRun.DUE,
                                     status=ContactRun.RUNNING, started_at=long_ago,
                                     heartbeat_at=long_ago, hosts_done=3)
    assert resolve_due_contacts() == 1
    dead.refresh_from_db()
    assert dead.status == ContactRun.FAILED and dead.error.startswith("abandoned: no progress")
    assert AuditEvent.objects.filter(action="contacts.run_abandoned").count() == 1
    assert state_of(campaign, "82.44.79.141") == states.CONTACT_RESOLVED
    fresh = ContactRun.objects.exclude(pk=dead.pk).get()
    assert fresh.status == ContactRun.DONE and fresh.heartbeat_at >= fresh.started_at


def test_the_beat_leaves_a_run_that_is_making_progress_alone(registries, campaign):
    from probes.contacts.tasks import resolve_due_contacts

    campaign.auto_resolve_contacts = True
    campaign.save()
    add_host(campaign, "82.44.79.141")
    alive = ContactRun.objects.create(
        campaign=campaign, mode=ContactRun.DUE, status=ContactRun.RUNNING,
        started_at=timezone.now() - timedelta(hours=2), heartbeat_at=timezone.now())
    assert resolve_due_contacts() == 0
    alive.refresh_from_db()
    assert alive.status == ContactRun.RUNNING
    assert state_of(campaign, "82.44.79.141") == states.VERIFIED_OPEN


def test_a_429_with_a_short_retry_after_is_waited_out_in_the_same_run(registries, campaign):
    """Retry-After: 1 means one second, not the 30 s back-off, and the host is resolved now."""
    rdap_fake, _ = registries
    path = "/ripe/ip/82.44.79.141"
    answer = rdap_fake.routes.pop(path)
    asked: list[float] = []

    def first_refused(requested: str):
        if requested != path:
            return None
        asked.append(time.monotonic())
        return Reply(429, b"{}", {"Retry-After": "1"}) if len(asked) == 1 else answer

    rdap_fake.fallback = first_refused
    add_host(campaign, "82.44.79.141")
    assert run("resolve_contacts", "--campaign", campaign.slug) == (
        "hosts=1 resolved=1 failed=0 queries=2")
    assert len(asked) == 2
    assert 1.0 <= asked[1] - asked[0] < 10  # the registry's second, not our 30 s


def test_a_long_retry_after_fails_the_host_until_a_later_run(registries, campaign):
    rdap_fake, whois_fake = registries
    whois_fake.stop()
    rdap_fake.routes["/ripe/ip/82.44.79.141"] = Reply(429, b"{}", {"Retry-After": "600"})
    add_host(campaign, "82.44.79.141")
    assert run("resolve_contacts", "--campaign", campaign.slug) == (
        "hosts=1 resolved=0 failed=1 queries=1")
    assert "backing off 600s" in Contact.objects.get().last_error


def test_a_whois_no_entries_answer_is_not_asked_again_for_the_same_network(registries,
                                                                          campaign):
    rdap_fake, whois_fake = registries
    rdap_fake.fallback = lambda path: Reply(503, b"{}") if path.startswith("/ripe/") else None
    for last in (10, 11, 12, 200):
        add_host(campaign, f"82.44.78.{last}")  # one /24 the registries know nothing of
    assert run("resolve_contacts", "--campaign", campaign.slug).startswith(
        "hosts=4 resolved=0 failed=4 ")
    # IANA said "no entries" once; the other three addresses of the /24 were not asked.
    assert whois_fake.count() == 1, whois_fake.queries
    assert "not asked again" in Contact.objects.get(host__ip="82.44.78.200").last_error


def test_registries_are_asked_concurrently_each_at_its_own_pace(registries, campaign,
                                                                settings):
    """Two registries, five networks each, paced at 4 queries/s: their queries overlap in
    time instead of one registry waiting for the other to finish."""
    rdap_fake, _ = registries
    settings.CONTACT_LOOKUPS_PER_SECOND = 4
    seen: list[tuple[str, float]] = []
    ripe = rdap_fake.routes["/ripe/ip/82.44.79.141"]
    arin = rdap_fake.routes["/arin/ip/99.232.84.14"]

    def network_per_third_octet(path: str):
        for prefix, reply in (("/ripe/ip/82.44.", ripe), ("/arin/ip/99.232.", arin)):
            if path.startswith(prefix):
                seen.append((prefix, time.monotonic()))
                return reply
        return None

    rdap_fake.routes.clear()
    rdap_fake.fallback = network_per_third_octet
    # The fixture answers hold one network each, so every address outside it is asked
    # again: five addresses per registry, five queries each.
    for n in range(5):
        add_host(campaign, f"82.44.{100 + n}.1")
        add_host(campaign, f"99.232.{200 + n}.1")
    run("resolve_contacts", "--campaign", campaign.slug)
    ripe_times = [t for prefix, t in seen if prefix.startswith("/ripe")]
    arin_times = [t for prefix, t in seen if prefix.startswith("/arin")]
    assert len(ripe_times) == len(arin_times) == 5
    # Each registry paced: consecutive queries at least ~1/4 s apart.
    for times in (ripe_times, arin_times):
        assert all(b - a >= 0.2 for a, b in zip(times, times[1:], strict=False))
    # And concurrent: the ARIN queries happen while the RIPE ones are still going on.
    assert min(arin_times) < max(ripe_times) and min(ripe_times) < max(arin_times)
