"""Webhooks of ESPs an install has not set up: a stranger's POST gets a 404, never a 500 (an
anymail configuration error) and never a 200 (anymail accepts unauthenticated events for the
ESPs that rely on basic auth alone when no WEBHOOK_SECRET is set, with only a warning).
"""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from campaign.models import AuditEvent
from letters import urls as webhook_urls
from letters.models import InboundMessage, Letter, LetterEvent
from probes.contacts.models import Suppression
from tests.hostile.conftest import AUTH, MAILGUN_KEY
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
    url = reverse("anymail:mailgun_tracking_webhook")
    payload = {**mailgun_tracking(sent_letter), "signature": mailgun_signature()}
    forged = {**payload, "signature": {**payload["signature"], "signature": "0" * 64}}
    assert client.post(url, data=json.dumps(forged),
                       content_type="application/json").status_code == 400
    assert client.post(url, data=json.dumps(payload),
                       content_type="application/json").status_code == 200
    sent_letter.refresh_from_db()
    assert sent_letter.state == "bounced"
