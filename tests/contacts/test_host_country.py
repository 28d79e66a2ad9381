"""A host's country: the feed's, else its abuse contact's network country (RDAP/WHOIS)."""

import importlib
import io
import json

from django.apps import apps
from django.core.management import call_command
from django.urls import reverse

from campaign import dashboard, states
from campaign.models import Host
from probes.contacts import resolving
from probes.contacts.models import Contact

# tests/contacts/fixtures: LACNIC answers for 179.231.40.0/22 with country CO.
COLOMBIAN = "179.231.41.242"


def add_host(campaign, ip, country=""):
    return Host.objects.create(campaign=campaign, ip=ip, state=states.VERIFIED_OPEN,
                               country=country)


def test_a_host_without_a_feed_country_takes_its_contacts(registries, campaign, client, alice):
    host = add_host(campaign, COLOMBIAN)
    client.force_login(alice)
    assert dashboard.country_state_counts(campaign) == [("??", states.VERIFIED_OPEN, 1)]

    assert resolving.resolve_hosts(campaign).line.startswith("hosts=1 resolved=1")

    host.refresh_from_db()
    assert host.country == "CO"
    assert Contact.objects.get(host=host).country == "CO"
    out = io.StringIO()
    call_command("show_host", campaign.slug, COLOMBIAN, "--json", stdout=out)
    assert json.loads(out.getvalue())["country"] == "CO"
    page = client.get(reverse("host_detail", args=[campaign.slug, COLOMBIAN])).content.decode()
    assert "<dt>Country</dt><dd>CO</dd>" in page


def test_the_feeds_country_wins_over_the_contacts(registries, campaign):
    host = add_host(campaign, COLOMBIAN, country="BR")

    resolving.resolve_hosts(campaign)

    host.refresh_from_db()
    assert host.country == "BR"
    assert Contact.objects.get(host=host).country == "CO"  # the network's, kept on the contact


def test_the_dashboard_counts_the_contacts_country(registries, campaign, client, alice):
    add_host(campaign, COLOMBIAN)
    client.force_login(alice)
    before = client.get(reverse("campaign_detail", args=[campaign.slug])).content.decode()
    assert 'data-country="??"' in before and 'data-country="CO"' not in before

    resolving.resolve_hosts(campaign)

    assert dashboard.country_state_counts(campaign) == [("CO", states.CONTACT_RESOLVED, 1)]
    after = client.get(reverse("campaign_detail", args=[campaign.slug])).content.decode()
    assert 'data-country="CO"' in after and 'data-country="??"' not in after


def test_the_migration_back_fills_hosts_resolved_before(campaign):
    old = add_host(campaign, "192.0.2.1")
    feed = add_host(campaign, "192.0.2.2", country="DE")
    unknown = add_host(campaign, "192.0.2.3")
    Contact.objects.create(host=old, country="jp", status=Contact.RESOLVED)
    Contact.objects.create(host=feed, country="FR", status=Contact.RESOLVED)
    Contact.objects.create(host=unknown, country="", status=Contact.FAILED)

    importlib.import_module("campaign.migrations.0005_host_country_from_contact").fill(
        apps, None)

    assert dict(Host.objects.filter(campaign=campaign).values_list("ip", "country")) == {
        "192.0.2.1": "JP", "192.0.2.2": "DE", "192.0.2.3": ""}
