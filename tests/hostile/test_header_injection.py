"""Header injection through contact addresses: registry answers (RDAP, WHOIS), a contact set
by hand and the recipient page never put a line break or a second recipient in a letter.

Every way in goes through clean_email (one plain `local@domain.tld`, refused otherwise), and
build_message checks again: a letter whose stored values were tampered with is not sent
(failed, with the reason), never sent with an extra header or to an extra recipient.
"""

from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse

from campaign.models import Agency, AuditEvent
from letters import sending, states
from letters.models import Letter
from probes.contacts import rdap, whois
from probes.contacts.errors import ContactError
from probes.contacts.models import Contact
from probes.contacts.overrides import set_contact
from probes.contacts.records import clean_email
from tests.letters.conftest import add_finding
from tests.letters.helpers import approved_batch

INJECTIONS = [
    "abuse@isp.example\r\nBcc: victim@evil.example",
    "abuse@isp.example\nBcc: victim@evil.example",
    "abuse@isp.example\rBcc: victim@evil.example",
    "abuse\n@isp.example",  # `$` in a regex also matches before a final newline
    "abuse@isp\n.example",
    "abuse@isp.example\n.evil",
    "abuse@isp.example, victim@evil.example",
    "abuse@isp.example;victim@evil.example",
    "abuse@isp.example victim@evil.example",
    "<abuse@isp.example>, <victim@evil.example>",
    "Abuse Desk <abuse@isp.example>",
    '"victim@evil.example" <abuse@isp.example>',
    "abuse@isp.example\x00victim@evil.example",
    "abuse@isp.example\u2028Bcc: victim@evil.example",
    "abuse@isp.example\u0085Bcc: victim@evil.example",
]


@pytest.mark.parametrize("value", INJECTIONS)
def test_clean_email_refuses_line_breaks_and_second_addresses(value):
    assert clean_email(value) is None


@pytest.mark.parametrize("value", ["abuse@isp.example\r\n", "\r\n abuse@isp.example \t",
                                   "mailto:abuse@isp.example", "<abuse@ISP.example>"])
def test_surrounding_whitespace_and_wrapping_are_neutralised(value):
    assert clean_email(value) == "abuse@isp.example"


def _rdap_doc(*emails: str) -> dict:
    entities = [{"roles": ["abuse"], "handle": f"H{i}",
                 "vcardArray": ["vcard", [["version", {}, "text", "4.0"],
                                          ["email", {}, "text", value]]]}
                for i, value in enumerate(emails)]
    return {"objectClassName": "ip network", "startAddress": "192.0.2.0",
            "endAddress": "192.0.2.255", "entities": entities}


def test_an_rdap_answer_offers_no_injected_address():
    answer = rdap.parse_ip_network(_rdap_doc(*INJECTIONS, "noc@isp.example"))
    assert [c.email for c in answer.candidates] == ["noc@isp.example"]


def test_a_whois_answer_offers_no_injected_address():
    lines = ["inetnum: 192.0.2.0 - 192.0.2.255", "netname: TEST-NET", "abuse-c: AB1", "",
             "role: Abuse", "nic-hdl: AB1"]
    lines += [f"abuse-mailbox: {value}" for value in INJECTIONS]
    lines += ["% Abuse contact for '192.0.2.0 - 192.0.2.255' is "
              "'abuse@isp.example\rBcc: victim@evil.example'", "e-mail: noc@isp.example"]
    result = whois.extract(whois.parse("\n".join(lines)), ip="192.0.2.7")
    for candidate in result.candidates:
        assert clean_email(candidate.email) == candidate.email
        assert not any(ch in candidate.email for ch in "\r\n,; <>\x00")
    assert "victim@evil.example" not in [c.email for c in result.candidates]


@pytest.mark.django_db
@pytest.mark.parametrize("value", INJECTIONS[:8])
def test_a_hand_set_contact_with_an_injection_is_refused(campaign, bob, value):
    host = add_finding(campaign, email="noc@isp.example", ip="198.51.100.9")
    with pytest.raises(ContactError):
        set_contact(campaign=campaign, ip=host.ip, email=value, actor=bob, reason="asked to")
    assert Contact.objects.get(host=host).email == "noc@isp.example"


@pytest.mark.django_db
def test_the_contact_form_refuses_them_too(client, campaign, bob):
    host = add_finding(campaign, email="noc@isp.example", ip="198.51.100.9")
    client.force_login(bob)
    events = AuditEvent.objects.count()
    for value in INJECTIONS[:8]:
        response = client.post(reverse("contact_set", args=[campaign.slug, host.ip]),
                               {"email": value, "reason": "asked to", "language": ""})
        assert response.status_code == 400, value
    assert Contact.objects.get(host=host).email == "noc@isp.example"
    assert AuditEvent.objects.count() == events


@pytest.mark.django_db
def test_a_reply_on_the_recipient_page_changes_no_address(client, campaign, bob, rita,
                                                          settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    add_finding(campaign, email="noc@isp.example", ip="198.51.100.9")
    sending.send_batch(batch=approved_batch(campaign, bob, rita))
    letter = Letter.objects.get()
    page = letter.context["recipient_url"].split("://", 1)[1].split("/", 1)[1]
    text = "Write to\r\nBcc: victim@evil.example\r\nor victim@evil.example"
    response = client.post(f"/{page}reply/", {"kind": "not_mine", "text": text})
    assert response.status_code == 302
    assert Contact.objects.get().email == "noc@isp.example"
    letter.refresh_from_db()
    assert letter.email == "noc@isp.example"
    (sent,) = mail.outbox
    assert sent.recipients() == ["noc@isp.example"]


def _headers(message) -> list[str]:
    raw = message.message().as_bytes().decode("utf-8", "replace")
    return raw.split("\n\n", 1)[0].splitlines()


@pytest.mark.django_db
@pytest.mark.parametrize("name", [
    "FTC\r\nBcc: victim@evil.example", "FTC <sys@ftc.example>, victim@evil.example",
    'FTC" <x@y.example>, "victim', "Agence française\nde protection",
])
def test_an_agency_name_is_one_quoted_display_name(campaign, bob, rita, settings, name):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    Agency.objects.filter(pk=campaign.agency_id).update(name=name)
    campaign.agency.refresh_from_db()
    add_finding(campaign, email="noc@isp.example", ip="198.51.100.9")
    summary = sending.send_batch(batch=approved_batch(campaign, bob, rita))
    assert summary.sent == 1
    (sent,) = mail.outbox
    assert sent.recipients() == ["noc@isp.example"]
    headers = _headers(sent)
    assert not any(h.lower().startswith(("bcc:", "cc:")) for h in headers)
    assert sum(h.lower().startswith("from:") for h in headers) == 1
    assert "victim@evil.example" not in "".join(h for h in headers if h.startswith("To:"))


@pytest.mark.django_db
@pytest.mark.parametrize(("field", "value"), [
    ("email", "noc@isp.example\nBcc: victim@evil.example"),
    ("email", "noc@isp.example, victim@evil.example"),
    ("email", "Victim <victim@evil.example>"),
    ("sender_email", "sys@ftc.example\r\nBcc: victim@evil.example"),
    ("sender_email", "sys@ftc.example, victim@evil.example"),
    ("reply_to", "answers@ftc.example\nBcc: victim@evil.example"),
    ("reply_to", "answers@ftc.example, victim@evil.example"),
    ("subject", "Open relay\r\nBcc: victim@evil.example"),
])
def test_a_tampered_letter_fails_and_is_never_sent(campaign, bob, rita, settings, field, value):
    """Values changed behind the services' back (a bug, an old row, the database) are caught
    when the message is built: the letter fails with the reason, nothing leaves."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    add_finding(campaign, email="noc@isp.example", ip="198.51.100.9")
    batch = approved_batch(campaign, bob, rita)
    letter = Letter.objects.get()
    if field in ("email", "subject"):
        Letter.objects.filter(pk=letter.pk).update(**{field: value})
    else:
        context = {**letter.context, "agency": {**letter.context["agency"], field: value}}
        Letter.objects.filter(pk=letter.pk).update(context=context)
    summary = sending.send_batch(batch=batch)
    assert (summary.sent, summary.failed) == (0, 1)
    assert mail.outbox == []
    letter.refresh_from_db()
    assert letter.state == states.FAILED and letter.last_error.startswith("not sent:")
