"""DKIM: letters sent through our own SMTP carry a signature that verifies, checked on what a
real SMTP server on loopback received (dkimpy, against the public key as DNS would give it)."""

import base64
import subprocess
from email import message_from_bytes

import dkim
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import get_connection

from campaign.models import Agency
from letters import sending
from letters.dkim_signing import key_for
from tests.letters.helpers import Collector, approved_batch, smtp_server

pytestmark = pytest.mark.django_db


@pytest.fixture
def rsa_key(tmp_path):
    """(path of a fresh 2048-bit PEM key, its DNS TXT record)."""
    path = tmp_path / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(path), "2048"], check=True,
                   capture_output=True)
    der = subprocess.run(["openssl", "rsa", "-in", str(path), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    return path, b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


def sent_through_smtp(campaign, bob, rita, settings) -> list[bytes]:
    handler = Collector()
    server = smtp_server(handler)
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
        sending.send_batch(batch=approved_batch(campaign, bob, rita),
                           connection=get_connection(timeout=5))
    finally:
        server.stop()
    return [raw for _from, _to, raw in handler.messages]


def dns(record: bytes, selector: str = "sys2026", domain: str = "ftc.example"):
    def lookup(name, timeout=5):
        return record if name == f"{selector}._domainkey.{domain}.".encode() else None
    return lookup


def test_letters_in_any_script_verify(campaign, bob, rita, finding, settings, rsa_key):
    path, record = rsa_key
    settings.DKIM_SELECTOR, settings.DKIM_PRIVATE_KEY_FILE = "sys2026", str(path)
    finding(email="noc@isp.jp.example", language="ja", country="JP")
    finding(email="abuse@isp.de.example", language="de", country="DE")
    received = sent_through_smtp(campaign, bob, rita, settings)
    assert len(received) == 2
    for raw in received:
        signature = message_from_bytes(raw)["DKIM-Signature"]
        assert "d=ftc.example" in signature and "s=sys2026" in signature
        assert "c=relaxed/relaxed" in signature
        assert dkim.verify(raw, dnsfunc=dns(record))
        # Changed on the way, it no longer verifies.
        tampered = raw.replace(b"Dear", b"Deer", 1) if b"Dear" in raw else raw + b"x\r\n"
        assert not dkim.verify(tampered, dnsfunc=dns(record))


def test_an_agency_s_own_key_and_selector_win(campaign, bob, rita, finding, settings, rsa_key):
    path, record = rsa_key
    settings.DKIM_SELECTOR, settings.DKIM_PRIVATE_KEY_FILE = "", ""
    Agency.objects.filter(pk=campaign.agency_id).update(dkim_selector="ftc1",
                                                         dkim_key_file=str(path))
    finding(email="abuse@isp.de.example", language="de", country="DE")
    (raw,) = sent_through_smtp(campaign, bob, rita, settings)
    assert dkim.verify(raw, dnsfunc=dns(record, selector="ftc1"))


def test_without_a_key_nothing_is_signed(campaign, bob, rita, finding, settings):
    settings.DKIM_SELECTOR, settings.DKIM_PRIVATE_KEY_FILE = "", ""
    finding(email="abuse@isp.de.example", language="de", country="DE")
    (raw,) = sent_through_smtp(campaign, bob, rita, settings)
    assert b"DKIM-Signature" not in raw


def test_a_key_file_that_is_no_key_is_a_clear_error(settings, tmp_path):
    bad = tmp_path / "not-a-key.txt"
    bad.write_text("hello")
    settings.DKIM_SELECTOR, settings.DKIM_PRIVATE_KEY_FILE = "s", str(bad)
    with pytest.raises(ImproperlyConfigured, match="holds no PEM private key"):
        key_for({}, "sender@ftc.example")
    settings.DKIM_PRIVATE_KEY_FILE = str(tmp_path / "missing.pem")
    with pytest.raises(ImproperlyConfigured, match="No such file"):
        key_for({}, "sender@ftc.example")


def test_a_key_this_server_cannot_read_keeps_the_letter_queued_saying_why(
        campaign, bob, rita, finding, settings, tmp_path):
    from letters import states
    from letters.models import Letter

    settings.DKIM_SELECTOR = "sys2026"
    settings.DKIM_PRIVATE_KEY_FILE = str(tmp_path / "missing.pem")
    finding(email="abuse@isp.de.example", language="de", country="DE")
    assert sent_through_smtp(campaign, bob, rita, settings) == []  # nothing left unsigned
    letter = Letter.objects.get()
    assert (letter.state, letter.claimed_at, letter.claim_token) == (states.QUEUED, None, "")
    assert letter.last_error.startswith("not sent: DKIM key file")
