"""The contact pages through Django's test client: resolving against loopback registries,
watching the run, the host's contact with its evidence, overrides and the suppression list."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from campaign import states
from campaign.models import AuditEvent, Host
from probes.contacts.models import (
    Contact,
    ContactOverride,
    ContactRun,
    NetworkRecord,
    Suppression,
)
from tests.contacts import conftest as contacts_fixtures

pytestmark = pytest.mark.django_db

# The contacts suite's loopback RDAP and WHOIS fakes, with settings pointing at them.
loopback = contacts_fixtures.loopback
rdap_fake = contacts_fixtures.rdap_fake
whois_fake = contacts_fixtures.whois_fake
registries = contacts_fixtures.registries


def url(name, *args):
    return reverse(name, args=args)


def body(response) -> str:
    return response.content.decode()


def add_host(campaign, ip, state=states.VERIFIED_OPEN, country=""):
    return Host.objects.create(campaign=campaign, ip=ip, state=state, country=country)


def resolved_contact(host, *, email="abuse@isp.example", language="de", confidence="high"):
    now = timezone.now()
    network = NetworkRecord.objects.create(
        network="203.0.113.0/24",
        start_address="203.0.113.0", end_address="203.0.113.255", cidrs=["203.0.113.0/24"],
        name="EXAMPLE-NET", handle="NET-203-0-113-0-1", country="DE", organisation="Example ISP",
        email=email, confidence=confidence, source="rdap", server="https://rdap.example/",
        expires_at=now + timedelta(days=30),
    )
    return Contact.objects.create(
        host=host, network=network, status=Contact.RESOLVED, email=email,
        organisation="Example ISP", country="DE", language=language, source="rdap",
        server="https://rdap.example/", handle="ABUSE1-RIPE", confidence=confidence,
        fetched_at=now,
    )


def queries_for(client, path) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path)
    assert response.status_code == 200, path
    return len(ctx.captured_queries)


# --- resolution runs -----------------------------------------------------------------------


def test_a_reviewer_sees_no_resolve_button_and_gets_403(client, rita, campaign):
    client.force_login(rita)
    page = body(client.get(url("campaign_detail", campaign.slug)))
    assert "No contact resolution yet." in page
    assert url("contact_run_start", campaign.slug) not in page
    assert client.get(url("contact_run_start", campaign.slug)).status_code == 403
    assert client.post(url("contact_run_start", campaign.slug)).status_code == 403
    assert not ContactRun.objects.exists()


def test_analysts_resolve_contacts_against_loopback_registries_and_watch_the_run(
    client, alice, campaign, registries, django_capture_on_commit_callbacks
):
    rdap, _ = registries
    add_host(campaign, "82.44.79.141")
    add_host(campaign, "179.231.41.242")
    add_host(campaign, "8.8.4.4", state=states.IMPORTED)  # not verified: not looked up
    client.force_login(alice)
    page = body(client.get(url("campaign_detail", campaign.slug)))
    assert f'action="{url("contact_run_start", campaign.slug)}"' in page
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(url("contact_run_start", campaign.slug), {"mode": "pending"})
    # One: the run's task, queued after the commit. The eager task itself then moves both hosts
    # and gives them their contact's country: each says hosts_changed after its own commit.
    assert len(callbacks) == 3
    countries = dict(Host.objects.values_list("ip", "country"))
    assert countries["8.8.4.4"] == ""  # not looked up, and the feed named no country
    assert countries["82.44.79.141"] and countries["179.231.41.242"]  # the registry's
    run = ContactRun.objects.get()
    assert response["Location"] == url("contact_run_detail", campaign.slug, run.pk)
    assert (run.status, run.created_by, run.mode) == (ContactRun.DONE, alice, "pending")
    assert run.summary_line == "hosts=2 resolved=2 failed=0 queries=2"
    assert rdap.count("/") >= 2  # the look-ups went to the loopback fake
    assert AuditEvent.objects.filter(action="contacts.run_start", actor=alice).exists()

    detail = body(client.get(response["Location"]))
    assert f"Contact resolution #{run.pk} queued." in detail
    assert "hosts=2 resolved=2 failed=0 queries=2" in detail
    assert "job-progress.js" not in detail  # finished: nothing to poll
    host = body(client.get(url("host_detail", campaign.slug, "179.231.41.242")))
    contact = host.split('id="contact"', 1)[1].split("</section>", 1)[0]
    assert "abuse@conectividad-andina.example" in contact
    assert "RDAP" in contact and "<code>ABC37</code>" in contact
    assert "<code>179.231.40.0/22</code>" in contact
    assert "High (abuse role)" in contact
    assert "Español (es)" in contact
    campaign_page = body(client.get(url("campaign_detail", campaign.slug)))
    assert ("<strong>2</strong> hosts with a contact and no letter yet, <strong>0</strong> "
            "without a contact" in campaign_page)
    assert f'href="{url("contact_run_detail", campaign.slug, run.pk)}"' in campaign_page


def test_a_bad_mode_is_refused_with_the_form_again(client, bob, campaign):
    client.force_login(bob)
    response = client.post(url("contact_run_start", campaign.slug), {"mode": "everything"})
    assert response.status_code == 400
    assert "Select a valid choice" in body(response)
    assert '<label for="id_mode">Hosts to resolve' in body(response)
    assert not ContactRun.objects.exists()


def test_the_status_endpoint_reports_progress_and_a_running_page_polls(client, rita,
                                                                       campaign):
    run = ContactRun.objects.create(campaign=campaign, status=ContactRun.RUNNING,
                                    hosts_total=8, hosts_done=2, resolved=2, queries=1)
    client.force_login(rita)  # reviewers may watch
    response = client.get(url("contact_run_status", campaign.slug, run.pk))
    assert response["Cache-Control"] == "no-store"
    data = response.json()
    assert data["finished"] is False and data["status_label"] == "Running"
    assert (data["done"], data["total"], data["percent"]) == (2, 8, 25)
    assert data["summary"] == "hosts=8 resolved=2 failed=0 queries=1"
    page = body(client.get(url("contact_run_detail", campaign.slug, run.pk)))
    assert "job-progress.js" in page
    assert f'data-status-url="{url("contact_run_status", campaign.slug, run.pk)}"' in page
    assert 'data-field="queries">1<' in page
    assert "job-progress.js" in body(client.get(url("campaign_detail", campaign.slug)))


def test_a_run_of_another_campaign_or_agency_is_not_found(client, bob, campaign):
    from campaign.services import create_campaign
    from tests.conftest import make_user

    other = create_campaign(slug="bsi-2026", agency_name="BSI", kinds="relay")
    run = ContactRun.objects.create(campaign=campaign)
    client.force_login(bob)
    assert client.get(url("contact_run_detail", other.slug, run.pk)).status_code == 404
    client.force_login(make_user("dora", "staff", agency_name="BSI"))
    assert client.get(url("contact_run_detail", campaign.slug, run.pk)).status_code == 404
    assert client.post(url("contact_run_start", campaign.slug)).status_code == 404


# --- the host's contact and overrides ------------------------------------------------------


def test_the_host_page_shows_contact_source_network_confidence_and_language(client, rita,
                                                                           campaign):
    host = add_host(campaign, "203.0.113.9", state=states.CONTACT_RESOLVED)
    resolved_contact(host, confidence="medium")
    client.force_login(rita)
    page = body(client.get(url("host_detail", campaign.slug, host.ip)))
    card = page.split('id="contact"', 1)[1].split("</section>", 1)[0]
    assert 'href="mailto:abuse@isp.example"' in card
    assert "RDAP" in card and "https://rdap.example/" in card and "ABUSE1-RIPE" in card
    assert "<code>203.0.113.0/24</code>" in card and "EXAMPLE-NET" in card
    assert "Medium (no abuse role)" in card
    assert "Deutsch (de)" in card
    assert "Example ISP" in card
    # Reviewers read contacts; they do not change them.
    assert "Set the contact by hand" not in card
    assert client.post(url("contact_set", campaign.slug, host.ip),
                       {"email": "x@example.org", "reason": "r"}).status_code == 403


def test_staff_set_a_contact_by_hand_and_it_is_kept_with_who_and_why(client, bob, campaign):
    host = add_host(campaign, "203.0.113.10")
    resolved_contact(host)
    client.force_login(bob)
    page = body(client.get(url("host_detail", campaign.slug, host.ip)))
    assert f'action="{url("contact_set", campaign.slug, host.ip)}"' in page
    assert '<label for="id_reason">Reason <span class="req" aria-hidden="true">*</span>' in page
    response = client.post(url("contact_set", campaign.slug, host.ip), {
        "email": "noc@Isp.Example", "language": "ja", "reason": "the ISP asked for its NOC"})
    assert response["Location"] == url("host_detail", campaign.slug, host.ip) + "#contact"
    contact = Contact.objects.get(host=host)
    assert (contact.email, contact.language, contact.source, contact.manual) == (
        "noc@isp.example", "ja", "manual", True)
    assert contact.overridden_by == bob
    override = ContactOverride.objects.get()
    assert (override.previous_email, override.reason) == ("abuse@isp.example",
                                                          "the ISP asked for its NOC")
    event = AuditEvent.objects.get(action="contact.override")
    assert event.actor == bob and event.data["reason"] == "the ISP asked for its NOC"
    assert Host.objects.get(pk=host.pk).state == states.CONTACT_RESOLVED
    page = body(client.get(response["Location"]))
    assert "Contact of 203.0.113.10 set to noc@isp.example (letters in ja)." in page
    card = page.split('id="contact"', 1)[1].split("</section>", 1)[0]
    assert "Set by hand by <strong>bob</strong>" in card
    assert "日本語 (ja)" in card and "chosen by staff" in card
    assert "abuse@isp.example → noc@isp.example (ja)" in card


def test_an_override_needs_a_reason_a_valid_address_and_no_suppression(client, alice,
                                                                       campaign):
    host = add_host(campaign, "203.0.113.11")
    Suppression.objects.create(value="blocked.example", kind=Suppression.DOMAIN,
                               reason="asked not to be written to")
    client.force_login(alice)
    path = url("contact_set", campaign.slug, host.ip)
    no_reason = client.post(path, {"email": "a@example.org", "reason": ""})
    assert no_reason.status_code == 400 and "This field is required." in body(no_reason)
    bad = client.post(path, {"email": "not an address", "reason": "x"})
    assert bad.status_code == 400 and "Enter a valid email address." in body(bad)
    blocked = client.post(path, {"email": "abuse@mail.blocked.example", "reason": "x"})
    assert blocked.status_code == 400
    assert "is on the do-not-contact list" in body(blocked)
    assert not Contact.objects.exists() and not ContactOverride.objects.exists()


def test_the_host_page_costs_the_same_queries_with_many_overrides(client, bob, campaign):
    host = add_host(campaign, "203.0.113.12")
    resolved_contact(host)
    client.force_login(bob)
    path = url("host_detail", campaign.slug, host.ip)
    client.get(path)
    before = queries_for(client, path)
    for i in range(6):
        ContactOverride.objects.create(host=host, email=f"n{i}@example.org", created_by=bob,
                                       reason=f"reason {i}")
    assert queries_for(client, path) == before


# --- the do-not-contact list ---------------------------------------------------------------


def test_staff_add_to_the_list_and_matching_contacts_leave_the_queue(client, bob, campaign):
    host = add_host(campaign, "203.0.113.13", state=states.CONTACT_RESOLVED)
    resolved_contact(host, email="abuse@isp.example")
    client.force_login(bob)
    page = body(client.get(url("suppression_list")))
    assert "The list is empty." in page
    assert '<label for="id_value">Address or domain' in page
    response = client.post(url("suppression_list"),
                           {"value": "ISP.example", "reason": "asked by <b>phone</b>"})
    assert response["Location"] == url("suppression_list")
    entry = Suppression.objects.get()
    assert (entry.value, entry.kind, entry.created_by) == ("isp.example", "domain", bob)
    assert AuditEvent.objects.filter(action="contact.suppress", actor=bob).exists()
    assert Contact.objects.get(host=host).status == Contact.SUPPRESSED
    assert Host.objects.get(pk=host.pk).state == states.NO_CONTACT
    page = body(client.get(response["Location"]))
    assert "isp.example is on the do-not-contact list." in page
    row = page.split('data-value="isp.example"', 1)[1].split("</tr>", 1)[0]
    assert "Domain" in row and "asked by &lt;b&gt;phone&lt;/b&gt;" in row and "by bob" in row


def test_a_reason_is_required_and_junk_is_refused(client, bob):
    client.force_login(bob)
    no_reason = client.post(url("suppression_list"), {"value": "a@example.org", "reason": ""})
    assert no_reason.status_code == 400
    junk = client.post(url("suppression_list"), {"value": "not a domain!", "reason": "x"})
    assert junk.status_code == 400
    assert "neither an e-mail address nor a domain name" in body(junk)
    assert not Suppression.objects.exists()


def test_reviewers_read_the_list_but_may_not_add_to_it(client, rita):
    Suppression.objects.create(value="a@example.org", kind="address", reason="bounced",
                               source="bounce")
    client.force_login(rita)
    nav = body(client.get(url("campaign_list")))
    assert f'href="{url("suppression_list")}"' in nav
    page = body(client.get(url("suppression_list")))
    assert "a@example.org" in page and "bounce" in page
    assert "Add to the list" not in page
    response = client.post(url("suppression_list"), {"value": "b@example.org", "reason": "x"})
    assert response.status_code == 403
    assert Suppression.objects.count() == 1


def test_the_list_is_searchable_paginated_and_costs_the_same_queries(client, alice):
    Suppression.objects.bulk_create(
        Suppression(value=f"user{i:03d}@example.org", kind="address", reason="r")
        for i in range(3))
    client.force_login(alice)
    client.get(url("suppression_list"))
    small = queries_for(client, url("suppression_list"))
    Suppression.objects.bulk_create(
        Suppression(value=f"user{i:03d}@example.org", kind="address", reason="r",
                    created_by=alice)
        for i in range(3, 150))
    assert queries_for(client, url("suppression_list")) == small
    page = body(client.get(url("suppression_list")))
    assert "150 entries" in page and "Page 1 of 2" in page
    found = client.get(url("suppression_list"), {"q": "USER14"})
    assert found.context["entries"].paginator.count == 10
    assert "10 entries matching “USER14”" in body(found)
