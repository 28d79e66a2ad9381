"""The IMAP poller against a real IMAP server (Debian's dovecot, started on loopback): every
message received once, handled mail moved to the done folder, unreadable mail kept and
flagged, a poll interrupted midway finished by the next without counting anything twice."""

import io

import pytest
from django.core.management import CommandError, call_command

from letters import states
from letters.inbound import imap
from letters.models import InboundMessage, Letter
from tests.letters.imap_server import Dovecot
from tests.letters.test_inbound_classify import OFFICE_365, gmail_bounce

pytestmark = [pytest.mark.servers, pytest.mark.django_db]


@pytest.fixture
def dovecot(settings):
    server = Dovecot().start()
    settings.INBOUND_IMAP_URL = server.url
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def two_letters(campaign, bob, rita, finding):
    from letters import sending
    from tests.letters.helpers import approved_batch

    finding(email="abuse@gone-isp.example", language="de", country="DE")
    finding(email="noc@tenant.example", language="en", country="US")
    sending.send_batch(batch=approved_batch(campaign, bob, rita))
    return Letter.objects.get(email="abuse@gone-isp.example"), Letter.objects.get(
        email="noc@tenant.example")


def mailbox(gone: Letter, noc: Letter) -> list[bytes]:
    bounce = gmail_bounce(gone.idempotency_key, gone.email)
    o365 = OFFICE_365.replace("fedcba9876543210fedcba9876543210", noc.idempotency_key)
    auto = ("From: NOC <noc@tenant.example>\r\nSubject: Automatic reply: your letter\r\n"
            f"Auto-Submitted: auto-replied\r\nIn-Reply-To: {noc.message_id}\r\n\r\nAway.\r\n")
    human = ("From: NOC <noc@tenant.example>\r\nSubject: Re: your letter\r\n"
             f"In-Reply-To: {noc.message_id}\r\n\r\nFixed it, thanks.\r\n")
    stranger = "From: someone@elsewhere.example\r\nSubject: hello\r\n\r\nwho are you\r\n"
    return [m.replace("\r\n", "\n").replace("\n", "\r\n").encode()
            for m in (bounce, o365, auto, human, stranger)] + [b"\x00\x01\x02 not mail"]


def run() -> str:
    out = io.StringIO()
    call_command("fetch_mail", stdout=out)
    return out.getvalue().strip().splitlines()[-1]


def test_one_poll_receives_everything_and_moves_it(dovecot, two_letters):
    gone, noc = two_letters
    dovecot.append(mailbox(gone, noc))
    assert run() == "fetched=6 bounces=2 complaints=0 auto_replies=1 replies=1 unmatched=2"
    assert dovecot.count("INBOX") == 0
    assert dovecot.count("Processed") == 6
    assert dovecot.flagged("Processed") == 1  # the unreadable one, kept and marked
    gone.refresh_from_db(), noc.refresh_from_db()
    assert gone.state == states.BOUNCED
    # In mailbox order: O365's bounce of noc, then noc's auto-reply (counts as nothing),
    # then a person's reply from the same address (a reply after a bounce wins: someone
    # read it after all).
    assert noc.state == states.REPLIED
    assert list(InboundMessage.objects.filter(letter=noc).order_by("id")
                .values_list("kind", flat=True)) == ["bounce", "auto_reply", "reply"]
    assert InboundMessage.objects.filter(esp="imap").count() == 6
    assert InboundMessage.objects.filter(parse_error__gt="").count() == 1
    # Nothing left: the next poll has nothing to do.
    assert run() == "fetched=0 bounces=0 complaints=0 auto_replies=0 replies=0 unmatched=0"


def test_a_poll_killed_midway_is_finished_by_the_next_without_double_counting(
        dovecot, two_letters, monkeypatch):
    gone, noc = two_letters
    dovecot.append(mailbox(gone, noc))
    real_receive = imap.receive_raw
    seen = []

    def killed_at_the_fourth(raw, **kwargs):
        if len(seen) == 3:
            raise OSError("worker killed")  # three recorded, nothing moved yet
        seen.append(raw)
        return real_receive(raw, **kwargs)

    monkeypatch.setattr(imap, "receive_raw", killed_at_the_fourth)
    with pytest.raises(CommandError, match="worker killed"):
        run()
    assert InboundMessage.objects.count() == 3
    assert dovecot.count("INBOX") == 6 and dovecot.count("Processed") == 0
    monkeypatch.setattr(imap, "receive_raw", real_receive)
    run()  # all six come round again: the first three are recorded already, nothing changes
    assert dovecot.count("INBOX") == 0 and dovecot.count("Processed") == 6
    assert InboundMessage.objects.count() == 6
    assert InboundMessage.objects.filter(letter=gone, kind="bounce").count() == 1
    assert gone.events.count() == 1  # the bounce's event once, not once per poll


def test_messages_are_moved_only_once_recorded(dovecot, two_letters, monkeypatch):
    gone, noc = two_letters
    dovecot.append(mailbox(gone, noc))

    def move_fails(*args):
        raise OSError("connection lost")

    monkeypatch.setattr(imap, "_move", move_fails)
    with pytest.raises(CommandError, match="connection lost"):
        run()
    assert InboundMessage.objects.count() == 6 and dovecot.count("INBOX") == 6


def test_a_wrong_password_is_a_clear_error(dovecot, settings):
    settings.INBOUND_IMAP_URL = dovecot.url.replace("imap-test-password", "wrong")
    with pytest.raises(CommandError, match="IMAP: .*AUTHENTICATIONFAILED|IMAP: .*failed"):
        run()


@pytest.mark.parametrize(("url", "message"), [
    ("pop3://u:p@h/INBOX", "INBOUND_IMAP_URL must be imaps://"),
    ("imaps://host.example/INBOX", "names no user"),
])
def test_a_bad_url_is_refused(settings, url, message):
    settings.INBOUND_IMAP_URL = url
    with pytest.raises(CommandError, match=message):
        run()


def test_without_a_mailbox_it_says_what_to_set(settings):
    settings.INBOUND_IMAP_URL = ""
    with pytest.raises(CommandError, match="set INBOUND_IMAP_URL"):
        run()


def test_the_url_is_read_with_quoted_credentials():
    account = imap.ImapAccount.from_url("imaps://bounce%40ftc.example:p%2Fw%3Ad@mx.example/Bounces")
    assert (account.secure, account.host, account.port, account.user, account.password,
            account.mailbox) == (True, "mx.example", 993, "bounce@ftc.example", "p/w:d",
                                 "Bounces")
