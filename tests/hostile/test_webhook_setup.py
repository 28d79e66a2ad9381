"""Webhooks of ESPs an install has not set up: a stranger's POST gets a 404, never a 500 (an
anymail configuration error) and never a 200 (anymail accepts unauthenticated events for the
ESPs that rely on basic auth alone when no WEBHOOK_SECRET is set, with only a warning). Only
the ESPs the install uses answer (ANYMAIL_WEBHOOK_ESPS, else EMAIL_BACKEND's): the one
WEBHOOK_SECRET set for one of them opens no other.
"""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from campaign.models import AuditEvent
from letters import urls as webhook_urls
from letters.models import InboundMessage, Letter, LetterEvent
from probes.contacts.models import Suppression
from tests.hostile.conftest import ALL_ESPS, AUTH, MAILGUN_KEY, WEBHOOK_SECRET
from tests.hostile.test_webhook_fuzz import mailgun_signature, mailgun_tracking

pytestmark = [pytest.mark.django_db,
              pytest.mark.filterwarnings("ignore:.*(SendGrid|SendinBlue).*"),
              # letters.webhooks silences it in production; pytest resets warning filters.
              pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailInsecureWebhookWarning")]

BOUNCE = [{"email": "abuse@isp.example", "timestamp": 1763719200, "event": "bounce",
           "sg_event_id": "forged-1", "reason": "550", "type": "bounce"}]


def counts() -> tuple:
    return (LetterEvent.objects.count(), InboundMessage.objects.count(),
            AuditEvent.objects.count(), Suppression.objects.count(),
            tuple(Letter.objects.values_list("state", flat=True)))


@pytest.mark.parametrize("anymail", [{}, {"MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY}])
def test_with_no_webhook_secret_no_basic_auth_webhook_takes_a_call(client, sent_letter,
                                                                   settings, anymail):
    settings.ANYMAIL = anymail
    settings.ANYMAIL_WEBHOOK_ESPS = ALL_ESPS
    before = counts()
    for pattern in webhook_urls.urlpatterns:
        url = reverse(f"anymail:{pattern.name}")
        if anymail and "mailgun" in url:
            continue  # set up: see below
        for body in (json.dumps(BOUNCE), "{}", "not json"):
            response = client.post(url, data=body, content_type="application/json", **AUTH)
            assert response.status_code == 404, (url, response.status_code)
    assert counts() == before


def test_an_esp_set_up_by_its_signing_key_alone_still_works(client, sent_letter, settings):
    settings.ANYMAIL = {"MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY}
    settings.ANYMAIL_WEBHOOK_ESPS = ["mailgun"]
    url = reverse("anymail:mailgun_tracking_webhook")
    payload = {**mailgun_tracking(sent_letter), "signature": mailgun_signature()}
    forged = {**payload, "signature": {**payload["signature"], "signature": "0" * 64}}
    assert client.post(url, data=json.dumps(forged),
                       content_type="application/json").status_code == 400
    assert client.post(url, data=json.dumps(payload),
                       content_type="application/json").status_code == 200
    sent_letter.refresh_from_db()
    assert sent_letter.state == "bounced"


def postmark_bounce(letter) -> dict:
    return {"RecordType": "Bounce", "ID": 42, "Type": "HardBounce", "TypeCode": 1,
            "Email": letter.email, "MessageID": letter.esp_message_id,
            "BouncedAt": "2025-11-21T10:00:00Z", "Description": "gone", "Details": "550"}


def test_the_webhook_secret_of_one_esp_opens_no_other(client, sent_letter, settings):
    """ANYMAIL_WEBHOOK_SECRET set for Postmark: SendGrid, SparkPost, Mailjet… (basic auth
    alone, the same secret) answer 404 to a call carrying it, and record nothing."""
    settings.ANYMAIL = {"WEBHOOK_SECRET": WEBHOOK_SECRET}
    settings.ANYMAIL_WEBHOOK_ESPS = ["postmark"]
    before = counts()
    for pattern in webhook_urls.urlpatterns:
        url = reverse(f"anymail:{pattern.name}")
        if url.startswith("/anymail/postmark/"):
            continue
        response = client.post(url, data=json.dumps(BOUNCE), content_type="application/json",
                               **AUTH)
        assert response.status_code == 404, (url, response.status_code)
    assert counts() == before
    response = client.post("/anymail/postmark/tracking/",
                           data=json.dumps(postmark_bounce(sent_letter)),
                           content_type="application/json", **AUTH)
    assert response.status_code == 200
    sent_letter.refresh_from_db()
    assert sent_letter.state == "bounced"


def test_without_a_list_the_esp_that_sends_the_mail_answers(client, sent_letter, settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": WEBHOOK_SECRET}
    settings.ANYMAIL_WEBHOOK_ESPS = None
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    assert client.post("/anymail/sendgrid/tracking/", data=json.dumps(BOUNCE),
                       content_type="application/json", **AUTH).status_code == 404
    assert client.post("/anymail/postmark/tracking/",
                       data=json.dumps(postmark_bounce(sent_letter)),
                       content_type="application/json", **AUTH).status_code == 200
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    assert client.post("/anymail/postmark/tracking/",
                       data=json.dumps(postmark_bounce(sent_letter)),
                       content_type="application/json", **AUTH).status_code == 404
