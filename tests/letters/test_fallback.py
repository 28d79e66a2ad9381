"""When a letter bounces for good, the host's owner is tried at the next address of its chain
(the registry's other roles, then abuse@ of the network's domain, then postal), each step
recorded with why, and the next letter is built and reviewed like any other."""

import json
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from campaign import states as host_states
from campaign.models import AuditEvent, Host
from letters import batches, sending, states
from letters.models import Letter
from probes.contacts.fallback import POSTAL_NEXT, chain_for
from probes.contacts.models import Contact, NetworkRecord
from tests.contacts.fakes import FIXTURES
from tests.letters.helpers import approved_batch
from tests.letters.test_inbound_classify import gmail_bounce
from tests.letters.test_receive_mail import receive

pytestmark = pytest.mark.django_db

ARIN = "arin-ip-99.232.0.0-17.json"


def network_from(fixture: str, *, start: str, end: str, source: str = "rdap") -> NetworkRecord:
    raw = (FIXTURES / source / fixture).read_text()
    return NetworkRecord.objects.create(
        network="99.232.0.0/17", start_address=start, end_address=end, raw=raw,
        source=source, email="abuse@harborline-comms.example",
        organisation="Harborline Communications, LLC",
        evidence={"queried": "99.232.84.14"},
        expires_at=timezone.now() + timedelta(days=30))


def bounce(letter: Letter) -> str:
    return receive(gmail_bounce(letter.idempotency_key, letter.email))


def send_next(campaign, bob, rita) -> Letter:
    sending.send_batch(batch=approved_batch(campaign, bob, rita))
    return Letter.objects.order_by("-id").first()


@pytest.fixture
def harborline(campaign, finding):
    host = finding(email="abuse@harborline-comms.example", country="US", ip="99.232.84.14")
    network = network_from(ARIN, start="99.232.0.0", end="99.232.127.255")
    Contact.objects.filter(host=host).update(network=network)
    return host


def test_the_chain_is_the_registry_s_roles_then_the_domain_s_abuse_mailbox(harborline):
    chain = chain_for(Contact.objects.get(host=harborline))
    assert [(s.email, s.role) for s in chain] == [
        ("abuse@harborline-comms.example", "abuse"),
        ("noc@harborline-comms.example", "technical"),
        ("ipadmin@harborline-comms.example", "administrative"),
    ]  # abuse@ of the domain is the registry's abuse address already: listed once
    assert "technical address in the RDAP record of 99.232.0.0 - 99.232.127.255" in chain[1].why


def test_each_permanent_bounce_moves_the_host_to_its_next_contact_then_postal(
        harborline, campaign, bob, rita):
    first = send_next(campaign, bob, rita)
    assert first.email == "abuse@harborline-comms.example"
    assert bounce(first) == f"kind=bounce letter={first.pk} recipients=1"

    contact = Contact.objects.get(host=harborline)
    assert (contact.email, contact.status, contact.confidence) == (
        "noc@harborline-comms.example", Contact.RESOLVED, "low")
    (step,) = contact.fallbacks
    assert (step["replaced"], step["role"], step["source"]) == (
        "abuse@harborline-comms.example", "technical", "rdap")
    assert step["reason"] == f"letter {first.pk} bounced (5.1.1)"
    assert Host.objects.get(pk=harborline.pk).state == host_states.CONTACT_RESOLVED
    event = AuditEvent.objects.filter(action="contact.fallback").get()
    assert event.data["next"] == "noc@harborline-comms.example"

    # The next letter is built, reviewed and approved like any other: four eyes.
    draft = batches.build_batch(campaign=campaign, actor=bob)
    (letter,) = draft.letters.all()
    assert (letter.email, letter.state, letter.kind) == (
        "noc@harborline-comms.example", states.DRAFT, states.FIRST_NOTICE)
    batches.submit_batch(batch=draft, actor=bob)
    with pytest.raises(PermissionDenied):  # the builder never approves
        batches.approve_batch(batch=draft, actor=bob)
    batches.approve_batch(batch=draft, actor=rita)
    sending.send_batch(batch=draft)
    second = Letter.objects.get(pk=letter.pk)
    bounce(second)
    assert Contact.objects.get(host=harborline).email == "ipadmin@harborline-comms.example"

    third = send_next(campaign, bob, rita)
    assert third.email == "ipadmin@harborline-comms.example"
    bounce(third)
    contact = Contact.objects.get(host=harborline)
    assert contact.status == Contact.NO_CONTACT
    assert contact.last_error == (f"{POSTAL_NEXT}, to the address in the RDAP record "
                                  "(registrant)")
    assert contact.postal_address == ("Harborline Communications, LLC\n4100 Pier Avenue\n"
                                      "Suite 300\nNorfolk\nVA\n23510\nUnited States")
    assert [h["role"] for h in contact.fallbacks] == ["technical", "administrative", "postal"]
    assert Host.objects.get(pk=harborline.pk).state == host_states.NO_CONTACT
    assert AuditEvent.objects.filter(action="contact.fallback_exhausted").count() == 1
    # No e-mail address is left: the next batch writes to the owner by post.
    (postal,) = batches.build_batch(campaign=campaign, actor=bob).letters.all()
    assert (postal.channel, postal.email, postal.postal_address) == (
        states.POSTAL, "", contact.postal_address)


def test_without_registry_roles_the_domain_s_abuse_mailbox_is_next(campaign, finding, bob,
                                                                  rita):
    host = finding(email="security@isp-one.example", country="US")
    letter = send_next(campaign, bob, rita)
    bounce(letter)
    contact = Contact.objects.get(host=host)
    assert contact.email == "abuse@isp-one.example"
    assert contact.fallbacks[0]["why"] == (
        "RFC 2142 abuse mailbox of isp-one.example, the network's own domain")


def test_the_domain_s_abuse_mailbox_is_at_the_registered_domain(campaign, finding):
    host = finding(email="noc@mail.ops.isp-two.co.uk", country="GB")
    chain = chain_for(Contact.objects.get(host=host))
    assert [s.email for s in chain] == ["abuse@isp-two.co.uk"]
    assert chain[0].why == "RFC 2142 abuse mailbox of isp-two.co.uk, the network's own domain"


@pytest.mark.parametrize(("domain", "registered"), [
    ("isp.example", "isp.example"), ("a.b.isp.example", "isp.example"),
    ("noc.bt.co.uk", "bt.co.uk"), ("co.uk", ""), ("ISP.Example.", "isp.example"), ("", ""),
])
def test_registered_domains(domain, registered):
    from probes.contacts.fallback import registered_domain

    assert registered_domain(domain) == registered


def test_a_suppressed_address_is_skipped(harborline, campaign, bob, rita):
    from probes.contacts.suppression import suppress

    suppress(value="noc@harborline-comms.example", actor=bob, reason="asked us to stop")
    bounce(send_next(campaign, bob, rita))
    assert Contact.objects.get(host=harborline).email == "ipadmin@harborline-comms.example"


def test_a_temporary_bounce_keeps_the_contact(harborline, campaign, bob, rita):
    letter = send_next(campaign, bob, rita)
    raw = (gmail_bounce(letter.idempotency_key, letter.email)
           .replace("Status: 5.1.1", "Status: 4.2.2").replace("Action: failed",
                                                               "Action: delayed"))
    receive(raw)
    contact = Contact.objects.get(host=harborline)
    assert contact.email == "abuse@harborline-comms.example" and contact.fallbacks == []


def test_a_contact_staff_set_by_hand_is_not_replaced(harborline, campaign, bob, rita):
    Contact.objects.filter(host=harborline).update(manual=True)
    bounce(send_next(campaign, bob, rita))
    contact = Contact.objects.get(host=harborline)
    assert contact.email == "abuse@harborline-comms.example" and contact.fallbacks == []


def test_the_whois_answer_gives_its_other_roles_too(campaign, finding):
    host = finding(email="abuse@harborline-comms.example", country="US", ip="99.232.84.14")
    network = network_from("arin-99.232.0.0-17.txt", start="99.232.0.0", end="99.232.127.255",
                           source="whois")
    Contact.objects.filter(host=host).update(network=network)
    chain = chain_for(Contact.objects.get(host=host))
    assert chain[0].role == "abuse" and len(chain) >= 2
    assert {s.source for s in chain[1:]} <= {"whois", "domain"}
    assert json.dumps([s.email for s in chain])  # plain addresses, storable


def test_the_host_page_shows_the_chain_and_the_postal_address(client, harborline, campaign,
                                                              bob, rita):
    from django.urls import reverse

    for _ in range(3):
        bounce(send_next(campaign, bob, rita))
    client.force_login(bob)
    page = client.get(reverse("host_detail", args=[campaign.slug, harborline.ip])).content.decode()
    chain = page.split('data-field="contact-fallbacks"', 1)[1].split("</details>", 1)[0]
    assert "After bounces (3)" in chain
    assert "abuse@harborline-comms.example → <strong>noc@harborline-comms.example</strong>" in chain
    assert "<strong>postal letter</strong>" in chain
    postal = page.split('data-field="contact-postal"', 1)[1].split("</address>", 1)[0]
    assert "Harborline Communications, LLC<br>4100 Pier Avenue<br>Suite 300" in postal
