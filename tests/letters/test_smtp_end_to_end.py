"""Through a real SMTP server on loopback: MIME structure, UTF-8 subjects and headers."""

import email
from email import policy

import pytest
from django.core.mail import get_connection

from letters import sending
from letters.models import Letter
from tests.letters.helpers import Collector, approved_batch, smtp_server

pytestmark = pytest.mark.django_db


def test_japanese_and_bulgarian_letters_arrive_well_formed(campaign, bob, rita, finding, settings):
    ja_host = finding(email="abuse@isp.jp.example", language="ja", country="JP")
    bg_host = finding(email="abuse@isp.bg.example", language="bg", country="BG",
                      check="socks5", port=1080, variant="socks5")
    batch = approved_batch(campaign, bob, rita)
    handler = Collector()
    server = smtp_server(handler)
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
        summary = sending.send_batch(batch=batch, connection=get_connection(timeout=5))
    finally:
        server.stop()
    assert (summary.sent, summary.failed) == (2, 0)
    assert len(handler.messages) == 2
    received = {}
    for mail_from, rcpts, raw in handler.messages:
        assert mail_from == "secureyourserver@ftc.example"
        # Raw headers are 7-bit: non-ASCII only as RFC 2047 encoded words.
        head = raw.split(b"\r\n\r\n", 1)[0] if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)[0]
        head.decode("ascii")
        assert b"=?utf-8?" in head
        received[rcpts[0]] = email.message_from_bytes(raw, policy=policy.default)

    for address, host, language, greeting in (
        ("abuse@isp.jp.example", ja_host, "ja", "ネットワーク管理者様"),
        ("abuse@isp.bg.example", bg_host, "bg", "Уважаеми мрежови администратор"),
    ):
        message = received[address]
        letter = Letter.objects.get(email=address)
        assert message["Subject"] == letter.subject
        assert any(ord(ch) > 127 for ch in message["Subject"])
        assert message["Message-ID"] == letter.message_id
        assert message["Content-Language"] == language
        assert message["Reply-To"] == "secureyourserver@ftc.example"
        assert message["From"].addresses[0].display_name == "Federal Trade Commission"
        assert message.get_content_type() == "multipart/alternative"
        parts = list(message.iter_parts())
        assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
        assert all(p.get_content_charset() == "utf-8" for p in parts)
        text, html = parts[0].get_content(), parts[1].get_content()
        assert greeting in text and host.ip in text
        assert greeting in html and f'lang="{language}"' in html
        assert text.replace("\r\n", "\n") == letter.body_text
    assert "SOCKS5" in received["abuse@isp.bg.example"].get_body(("plain",)).get_content()
