"""Shared set-up for the hostile-input tests: a sent letter and the ESP webhook credentials."""

from __future__ import annotations

import base64

import pytest

from letters import states
from letters.models import Letter
from tests.letters.conftest import add_finding, compiled_translations  # noqa: F401
from tests.letters.helpers import approved_batch

WEBHOOK_SECRET = "hook:hostile-webhook-pass"
AUTH = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(WEBHOOK_SECRET.encode()).decode()}
MAILGUN_KEY = "mailgun-signing-key-for-hostile-tests"
MAILERSEND_SECRET = "mailersend-signing-secret"
MAILERSEND_INBOUND_SECRET = "mailersend-inbound-secret"
MANDRILL_KEY = "mandrill-webhook-key"
MANDRILL_URL = "https://sys.example/anymail/mandrill/"
UNISENDER_KEY = "unisender-go-api-key-0123456789"
# Every ESP anymail serves webhooks for, by its URL name (ANYMAIL_WEBHOOK_ESPS).
ALL_ESPS = ["amazon_ses", "brevo", "mailersend", "mailgun", "mailjet", "mailtrap", "mandrill",
            "postal", "postmark", "resend", "sendgrid", "sendinblue", "sparkpost",
            "unisender_go"]


@pytest.fixture
def webhook_settings(settings):
    """Every ESP anymail can serve here, set up as an operator would (keys, one secret)."""
    settings.ANYMAIL = {
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY,
        "MAILERSEND_SIGNING_SECRET": MAILERSEND_SECRET,
        "MAILERSEND_INBOUND_SECRET": MAILERSEND_INBOUND_SECRET,
        "MANDRILL_WEBHOOK_KEY": MANDRILL_KEY,
        "MANDRILL_WEBHOOK_URL": MANDRILL_URL,
        "UNISENDER_GO_API_KEY": UNISENDER_KEY,
        "POSTAL_WEBHOOK_KEY": "MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAL",  # cryptography is missing
        "BREVO_API_KEY": "brevo-key", "SENDINBLUE_API_KEY": "brevo-key",
        "MAILTRAP_API_TOKEN": "mailtrap-token", "RESEND_API_KEY": "resend-key",
    }
    settings.ANYMAIL_WEBHOOK_ESPS = ALL_ESPS
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    return settings


@pytest.fixture
def sent_letter(campaign, bob, rita, webhook_settings):
    """One letter that left (its Message-ID and ESP id known), to abuse@isp.example."""
    from letters import sending

    add_finding(campaign, email="abuse@isp.example", language="en", country="US")
    sending.send_batch(batch=approved_batch(campaign, bob, rita))
    letter = Letter.objects.get()
    assert letter.state == states.SENT
    Letter.objects.filter(pk=letter.pk).update(esp_message_id="esp-message-0001")
    letter.refresh_from_db()
    return letter
