"""The deliverability page: what happened to the letters, and whose contact data bounces."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from letters import sending
from letters.deliverability import deliverability
from letters.inbound.receive import receive_raw
from letters.models import Letter
from probes.contacts.models import Contact, NetworkRecord
from tests.letters.helpers import approved_batch
from tests.letters.test_inbound_classify import arf_complaint, exim_full, gmail_bounce

pytestmark = pytest.mark.django_db


def network(server: str, block: str) -> NetworkRecord:
    start = block.split("/")[0]
    return NetworkRecord.objects.create(
        network=block, start_address=start, end_address=start, source="rdap", server=server,
        expires_at=timezone.now() + timedelta(days=30))


@pytest.fixture
def fared(campaign, bob, rita, finding):
    emails = ["gone@a.example", "full@b.example", "angry@c.example", "away@d.example",
              "human@e.example", "fine@f.example"]
    stale, fresh = (network("https://rdap.stale.example/", "198.51.0.0/24"),
                    network("https://rdap.fresh.example/", "203.0.113.0/24"))
    for i, email in enumerate(emails):
        host = finding(email=email, country="US")
        Contact.objects.filter(host=host).update(network=stale if i < 2 else fresh)
    sending.send_batch(batch=approved_batch(campaign, bob, rita))
    by = {e: Letter.objects.get(email=e) for e in emails}
    for make, email in ((gmail_bounce, emails[0]), (exim_full, emails[1]),
                        (arf_complaint, emails[2])):
        receive_raw(make(by[email].idempotency_key, email).encode(), source="pipe")
    receive_raw((f"From: <{emails[3]}>\nSubject: Out of Office\nIn-Reply-To: "
                 f"{by[emails[3]].message_id}\n\nAway.\n").encode(), source="pipe")
    receive_raw((f"From: <{emails[4]}>\nSubject: Re: your letter\nIn-Reply-To: "
                 f"{by[emails[4]].message_id}\n\nFixed.\n").encode(), source="pipe")
    return by


def test_the_figures(campaign, fared):
    found = deliverability(campaign)
    assert {k: v for k, v in found.items() if k != "registries"} == {
        "sent": 6, "delivered": 0, "bounced": 1, "temporary": 1, "complaints": 1,
        "auto_replies": 1, "replies": 1, "fallback_hosts": 1, "postal_next": 0,
        "postal_known": 0, "postal_posted": 0, "postal_returned": 0}
    stale, fresh = found["registries"]
    assert (stale.registry, stale.sent, stale.bounced, stale.bounce_rate) == (
        "https://rdap.stale.example/", 2, 1, 0.5)
    assert (fresh.registry, fresh.sent, fresh.bounced) == ("https://rdap.fresh.example/", 4, 0)


def test_the_page(client, campaign, fared, bob):
    client.force_login(bob)
    response = client.get(reverse("deliverability", args=[campaign.slug]))
    assert response.status_code == 200
    page = response.content.decode()
    assert '<div data-count="bounced"><dt>Bounced for good</dt><dd>1</dd>' in page
    assert '<div data-count="replies"><dt>Replies from people</dt><dd>1</dd>' in page
    assert "https://rdap.stale.example/</td><td class=\"num\">2</td>" in page
    assert "50 %" in page
    detail = client.get(reverse("campaign_detail", args=[campaign.slug])).content.decode()
    assert reverse("deliverability", args=[campaign.slug]) in detail


def test_another_agency_s_staff_do_not_see_the_campaign(client, campaign, fared):
    from campaign.models import Agency
    from tests.conftest import make_user

    Agency.objects.create(name="Bundesnetzagentur", country="DE")
    outsider = make_user("bea", "staff", "Bundesnetzagentur")
    client.force_login(outsider)
    assert client.get(reverse("deliverability", args=[campaign.slug])).status_code == 404
