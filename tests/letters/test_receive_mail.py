"""Mail that comes back, whatever the agency sends with: letters leave with a per-letter
return path (VERP) through a real SMTP server on loopback, and what comes back through
`manage.py receive_mail` (an MTA's pipe) bounces, marks, suppresses or keeps, exactly once."""

import io
import json
import sys
from email import message_from_bytes, policy

import pytest
from django.core.mail import get_connection
from django.core.management import call_command

from letters import sending, states
from letters.inbound.receive import record_inbound
from letters.models import InboundMessage, Letter, LetterEvent
from probes.contacts.models import Suppression
from tests.letters.helpers import Collector, approved_batch, smtp_server
from tests.letters.test_inbound_classify import GMAIL, arf_complaint, exim_full, gmail_bounce

pytestmark = pytest.mark.django_db

BOUNCE_DOMAIN = "bounce.ftc.example"


@pytest.fixture
def sent(campaign, bob, rita, finding, settings):
    """Two letters sent through a real SMTP server, with VERP return paths."""
    finding(email="abuse@gone-isp.example", language="de", country="DE")
    finding(email="noc@isp.example", language="en", country="US")
    settings.BOUNCE_DOMAIN = BOUNCE_DOMAIN
    handler = Collector()
    server = smtp_server(handler)
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
        summary = sending.send_batch(batch=approved_batch(campaign, bob, rita),
                                      connection=get_connection(timeout=5))
    finally:
        server.stop()
    assert summary.sent == 2
    return {rcpts[0]: (mail_from, raw) for mail_from, rcpts, raw in handler.messages}


def letter(email: str) -> Letter:
    return Letter.objects.get(email=email)


def test_each_letter_leaves_with_its_own_return_path_and_the_agency_as_from(sent):
    mail_from, raw = sent["abuse@gone-isp.example"]
    gone = letter("abuse@gone-isp.example")
    assert mail_from == f"bounces+{gone.idempotency_key}@{BOUNCE_DOMAIN}"
    message = message_from_bytes(raw, policy=policy.default)
    assert message["From"].addresses[0].addr_spec == "secureyourserver@ftc.example"
    assert message["From"].addresses[0].display_name == "Federal Trade Commission"
    assert sent["noc@isp.example"][0] != mail_from  # one return path per letter


def receive(raw: str | bytes, *args: str) -> str:
    out = io.StringIO()
    data = raw.encode() if isinstance(raw, str) else raw
    stdin = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(data))
    try:
        call_command("receive_mail", *args, stdout=out)
    finally:
        sys.stdin = stdin
    return out.getvalue().strip().splitlines()[-1]


def test_a_permanent_bounce_bounces_its_letter_and_suppresses_the_address(sent):
    gone = letter("abuse@gone-isp.example")
    line = receive(gmail_bounce(gone.idempotency_key, gone.email))
    assert line == f"kind=bounce letter={gone.pk} recipients=1"
    gone.refresh_from_db()
    assert gone.state == states.BOUNCED
    assert Suppression.objects.filter(value="abuse@gone-isp.example", source="bounce").exists()
    stored = InboundMessage.objects.get()
    assert (stored.kind, stored.matched_by, stored.esp, stored.letter_id) == (
        "bounce", "verp", "pipe", gone.pk)
    assert stored.recipients == [
        {"address": "abuse@gone-isp.example", "status": "5.1.1", "permanent": True}]
    assert bytes(stored.raw).startswith(b"Return-Path: <>")
    event = LetterEvent.objects.get(letter=gone)
    assert (event.event_type, event.recipient) == ("bounced", "abuse@gone-isp.example")
    assert letter("noc@isp.example").state == states.SENT


def test_the_same_message_delivered_twice_counts_once(sent):
    gone = letter("abuse@gone-isp.example")
    raw = gmail_bounce(gone.idempotency_key, gone.email)
    receive(raw)
    assert receive(raw) == f"kind=bounce letter={gone.pk} recipients=1"
    assert InboundMessage.objects.count() == 1
    assert LetterEvent.objects.filter(letter=gone).count() == 1


def test_without_a_token_the_returned_message_id_finds_the_letter(sent):
    noc = letter("noc@isp.example")
    raw = (GMAIL.replace("bounces+0123456789abcdef0123456789abcdef@bounce.ftc.example",
                         "secureyourserver@ftc.example")
           .replace("<letter-42.abc@secureyourserver.ftc.example>", noc.message_id)
           .replace("abuse@gone-isp.example", "someone-else@isp.example"))
    assert receive(raw) == f"kind=bounce letter={noc.pk} recipients=1"
    assert InboundMessage.objects.get().matched_by == "message_id"
    # The failed address is not the one we wrote to (a forward of it, say): the letter the
    # report returns did not arrive all the same.
    noc.refresh_from_db()
    assert noc.state == states.BOUNCED


def test_without_token_or_message_id_the_recipient_written_to_recently_is_matched(sent):
    gone = letter("abuse@gone-isp.example")
    raw = (GMAIL.replace("bounces+0123456789abcdef0123456789abcdef@bounce.ftc.example",
                         "secureyourserver@ftc.example")
           .replace("<letter-42.abc@secureyourserver.ftc.example>", "<other@elsewhere>"))
    assert receive(raw) == f"kind=bounce letter={gone.pk} recipients=1"
    assert InboundMessage.objects.get().matched_by == "recipient"
    # Anyone who knows we wrote to an address could send this: the letter is marked
    # bounced, but nothing is suppressed and no contact moves until a person looks.
    gone.refresh_from_db()
    assert gone.state == states.BOUNCED
    assert not Suppression.objects.exists()
    from probes.contacts.models import Contact

    assert Contact.objects.get(host__letter_links__letter=gone).email == gone.email


def test_a_full_mailbox_is_recorded_and_changes_nothing_else(sent):
    noc = letter("noc@isp.example")
    raw = exim_full(noc.idempotency_key, "noc@isp.example")
    assert receive(raw) == f"kind=bounce letter={noc.pk} recipients=1"
    noc.refresh_from_db()
    assert noc.state == states.SENT
    assert not Suppression.objects.filter(value="noc@isp.example").exists()
    assert LetterEvent.objects.get(letter=noc).event_type == "deferred"


def test_a_complaint_marks_the_letter_and_suppresses_the_address(sent):
    noc = letter("noc@isp.example")
    raw = (arf_complaint(noc.idempotency_key, "noc@isp.example")
           .replace("<letter-45.aaa@secureyourserver.ftc.example>", noc.message_id))
    assert receive(raw) == f"kind=complaint letter={noc.pk} recipients=1"
    noc.refresh_from_db()
    assert noc.state == states.COMPLAINED
    assert Suppression.objects.filter(value="noc@isp.example", source="complaint").exists()


def human(target: Letter, *, headers: str = "", subject: str = "Re: your letter") -> str:
    return (f"From: NOC <{target.email}>\nTo: secureyourserver@ftc.example\n"
            f"Subject: {subject}\nIn-Reply-To: {target.message_id}\n{headers}\n"
            "We closed the relay, thank you.\n")


def test_an_auto_reply_never_counts_as_a_reply(sent):
    noc = letter("noc@isp.example")
    line = receive(human(noc, headers="Auto-Submitted: auto-replied\n",
                         subject="Automatic reply: your letter"))
    assert line == f"kind=auto_reply letter={noc.pk} recipients=0"
    noc.refresh_from_db()
    assert noc.state == states.SENT
    assert InboundMessage.objects.get().kind == "auto_reply"


def test_a_person_s_reply_marks_the_letter_replied(sent):
    noc = letter("noc@isp.example")
    assert receive(human(noc)) == f"kind=reply letter={noc.pk} recipients=0"
    noc.refresh_from_db()
    assert noc.state == states.REPLIED


def test_mail_that_answers_no_letter_is_kept_unmatched(sent):
    raw = "From: stranger@elsewhere.example\nSubject: hello\n\nWho are you?\n"
    assert receive(raw) == "kind=unmatched letter=- recipients=0"
    assert InboundMessage.objects.get().kind == "unmatched"


def test_dry_run_json_prints_the_classification_and_changes_nothing(sent):
    gone = letter("abuse@gone-isp.example")
    raw = gmail_bounce(gone.idempotency_key, gone.email)
    printed = json.loads(receive(raw, "--dry-run", "--json"))
    assert printed == {"kind": "bounce", "letter": gone.pk, "recipients": [
        {"address": "abuse@gone-isp.example", "status": "5.1.1", "permanent": True}]}
    gone.refresh_from_db()
    assert gone.state == states.SENT
    assert not InboundMessage.objects.exists() and not Suppression.objects.exists()


def test_a_message_that_cannot_be_read_is_kept_and_reported_exit_zero(sent, tmp_path, capsys):
    path = tmp_path / "junk.eml"
    path.write_bytes(b"\x00\x01\x02" * 50)
    err = io.StringIO()
    out = io.StringIO()
    call_command("receive_mail", "--file", str(path), stdout=out, stderr=err)
    assert out.getvalue().strip() == "kind=unmatched letter=- recipients=0"
    assert "unreadable message kept" in err.getvalue()
    stored = InboundMessage.objects.get()
    assert stored.parse_error and bytes(stored.raw) == b"\x00\x01\x02" * 50


def test_an_esp_inbound_bounce_is_a_bounce_not_a_reply(sent):
    gone = letter("abuse@gone-isp.example")
    raw = gmail_bounce(gone.idempotency_key, gone.email).encode()
    message = message_from_bytes(raw, policy=policy.compat32)
    stored = record_inbound(message, "mailgun")
    assert (stored.kind, stored.esp) == ("bounce", "mailgun")
    gone.refresh_from_db()
    assert gone.state == states.BOUNCED
