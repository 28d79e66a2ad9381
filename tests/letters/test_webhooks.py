"""ESP webhooks posted to the real URLs, with auth, in Mailgun's and Postmark's shapes."""

import base64
import hashlib
import hmac
import json
import time

import pytest

from letters import selectors, states
from letters.models import InboundMessage, Letter, LetterEvent
from probes.contacts.models import Suppression
from tests.letters.helpers import approved_batch

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.letters.urls")]

SECRET = "hook:s3cret-webhook-pass"
SIGNING_KEY = "mailgun-signing-key-for-tests"
AUTH = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(SECRET.encode()).decode()}


@pytest.fixture(autouse=True)
def anymail_settings(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET, "MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY}
    settings.ANYMAIL_WEBHOOK_ESPS = ["mailgun", "postmark"]
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"


@pytest.fixture
def sent_letter(campaign, bob, rita, finding):
    from letters import sending

    finding(email="abuse@isp.example", language="sv", country="SE")
    sending.send_batch(batch=approved_batch(campaign, bob, rita))
    letter = Letter.objects.get()
    assert letter.state == states.SENT
    return letter


def mailgun_signature(token: str | None = None) -> dict:
    timestamp = str(int(time.time()))
    token = token or hashlib.sha256(str(time.time_ns()).encode()).hexdigest()[:50]
    signature = hmac.new(SIGNING_KEY.encode(), f"{timestamp}{token}".encode(),
                         hashlib.sha256).hexdigest()
    return {"timestamp": timestamp, "token": token, "signature": signature}


def mailgun_event(letter, event: str, **extra) -> dict:
    return {
        "signature": mailgun_signature(),
        "event-data": {
            "id": "CPgfbmQMTCKtHW6uIWtuVe",
            "timestamp": time.time(),
            "log-level": "info",
            "event": event,
            "recipient": letter.email,
            "recipient-domain": letter.domain,
            "message": {"headers": {
                "to": letter.email, "message-id": letter.esp_message_id,
                "from": "secureyourserver@ftc.example", "subject": letter.subject,
            }, "attachments": [], "size": 4212},
            "envelope": {"transport": "smtp", "sender": "secureyourserver@ftc.example",
                         "targets": letter.email},
            "user-variables": {},
            "tags": ["letter"],
            **extra,
        },
    }


def post_json(client, url, payload, **headers):
    return client.post(url, data=json.dumps(payload), content_type="application/json",
                       **{**AUTH, **headers})


def test_webhooks_refuse_calls_without_the_secret(client, sent_letter):
    payload = mailgun_event(sent_letter, "delivered")
    assert client.post("/anymail/mailgun/tracking/", data=json.dumps(payload),
                       content_type="application/json").status_code in (400, 401, 403)
    forged = {**payload, "signature": {**payload["signature"], "signature": "0" * 64}}
    assert post_json(client, "/anymail/mailgun/tracking/", forged).status_code == 400
    sent_letter.refresh_from_db()
    assert sent_letter.state == states.SENT and not LetterEvent.objects.exists()


def test_mailgun_delivery_and_permanent_failure_update_the_letter(client, sent_letter):
    Letter.objects.filter(pk=sent_letter.pk).update(
        esp_message_id="20261120140200.1.ABCDEF@mg.ftc.example")
    sent_letter.refresh_from_db()
    response = post_json(client, "/anymail/mailgun/tracking/",
                         mailgun_event(sent_letter, "delivered",
                                       **{"delivery-status": {"code": 250, "message": "OK"}}))
    assert response.status_code == 200
    sent_letter.refresh_from_db()
    assert sent_letter.state == states.DELIVERED and sent_letter.delivered_at
    failure = mailgun_event(sent_letter, "failed", severity="permanent", reason="bounce",
                            **{"delivery-status": {"code": 550, "attempt-no": 1,
                                                   "message": "5.1.1 mailbox unavailable",
                                                   "description": "Not delivering"}})
    assert post_json(client, "/anymail/mailgun/tracking/", failure).status_code == 200
    sent_letter.refresh_from_db()
    assert sent_letter.state == states.BOUNCED
    assert Suppression.objects.get(value="abuse@isp.example").source == "bounce"


def test_mailgun_finds_the_letter_by_its_user_variables(client, sent_letter):
    payload = mailgun_event(sent_letter, "complained",
                            **{"user-variables": {"letter": sent_letter.idempotency_key}})
    payload["event-data"]["message"]["headers"]["message-id"] = "unknown@mg.example"
    assert post_json(client, "/anymail/mailgun/tracking/", payload).status_code == 200
    sent_letter.refresh_from_db()
    assert sent_letter.state == states.COMPLAINED
    assert Suppression.objects.get(value="abuse@isp.example").source == "complaint"


def postmark(record_type: str, letter, **extra) -> dict:
    base = {"RecordType": record_type, "ServerID": 23, "MessageStream": "outbound",
            "MessageID": letter.esp_message_id, "Tag": "letter",
            "Metadata": {"letter": letter.idempotency_key}}
    return {**base, **extra}


def test_postmark_delivery_open_and_bounce_with_duplicates_ignored(client, sent_letter):
    url = "/anymail/postmark/tracking/"
    Letter.objects.filter(pk=sent_letter.pk).update(
        esp_message_id="883953f4-6105-42a2-a16a-77a8eac79483")
    sent_letter.refresh_from_db()
    delivery = postmark("Delivery", sent_letter, Recipient=sent_letter.email,
                        DeliveredAt="2026-11-21T09:00:00Z", Details="smtp;250 2.0.0 OK")
    assert post_json(client, url, delivery).status_code == 200
    opened = postmark("Open", sent_letter, Recipient=sent_letter.email, FirstOpen=True,
                      ReceivedAt="2026-11-21T10:00:00Z", Platform="WebMail",
                      UserAgent="Mozilla/5.0", ReadSeconds=5, Client={}, OS={}, Geo={})
    assert post_json(client, url, opened).status_code == 200
    sent_letter.refresh_from_db()
    assert sent_letter.state == states.DELIVERED and sent_letter.opened_at
    bounce = postmark("Bounce", sent_letter, ID=4323372036854775807, Type="HardBounce",
                      TypeCode=1, Name="Hard bounce", Email=sent_letter.email,
                      From="secureyourserver@ftc.example", BouncedAt="2026-11-22T09:00:00Z",
                      Description="The server was unable to deliver your message",
                      Details="smtp;550 5.1.1 The email account does not exist",
                      DumpAvailable=True, Inactive=True, CanActivate=True,
                      Subject=sent_letter.subject)
    assert post_json(client, url, bounce).status_code == 200
    assert post_json(client, url, bounce).status_code == 200  # Postmark retries
    sent_letter.refresh_from_db()
    assert sent_letter.state == states.BOUNCED
    assert LetterEvent.objects.filter(event_type="bounced").count() == 1
    assert Suppression.objects.filter(value="abuse@isp.example").exists()


def test_a_postmark_reply_is_threaded_to_its_letter(client, sent_letter):
    payload = {
        "FromName": "Network Operations", "MessageStream": "inbound",
        "From": "abuse@isp.example",
        "FromFull": {"Email": "abuse@isp.example", "Name": "Network Operations",
                     "MailboxHash": ""},
        "To": "secureyourserver@ftc.example",
        "ToFull": [{"Email": "secureyourserver@ftc.example", "Name": "", "MailboxHash": ""}],
        "Cc": "", "CcFull": [], "Bcc": "", "BccFull": [],
        "OriginalRecipient": "secureyourserver@ftc.example",
        "Subject": "Re: " + sent_letter.subject,
        "MessageID": "73e6d360-66eb-11e1-8e72-a8904824019b", "ReplyTo": "", "MailboxHash": "",
        "Date": "Sat, 21 Nov 2026 16:45:32 +0100",
        "TextBody": "Tack, vi har stängt reläet.", "HtmlBody": "<p>Tack, vi har stängt reläet.</p>",
        "StrippedTextReply": "Tack, vi har stängt reläet.", "Tag": "",
        "Headers": [{"Name": "X-Spam-Status", "Value": "No"},
                    {"Name": "In-Reply-To", "Value": sent_letter.message_id}],
        "Attachments": [],
    }
    response = post_json(client, "/anymail/postmark/inbound/", payload)
    assert response.status_code == 200
    reply = InboundMessage.objects.get()
    assert reply.letter == sent_letter and "stängt" in reply.text
    sent_letter.refresh_from_db()
    assert sent_letter.state == states.REPLIED and sent_letter.replied_at
    assert selectors.letter_counts(sent_letter.campaign)["by_state"]["replied"] == 1


def test_a_mailgun_reply_without_references_is_matched_by_its_sender(client, sent_letter):
    raw = (
        "From: NOC <Abuse@ISP.example>\r\n"
        "To: secureyourserver@ftc.example\r\n"
        "Subject: =?utf-8?q?Re:_st=C3=A4ngt?=\r\n"
        "Message-ID: <reply-1@isp.example>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "Fixed now.\r\n"
    )
    form = {"body-mime": raw, "recipient": "secureyourserver@ftc.example",
            "sender": "abuse@isp.example", **mailgun_signature()}
    response = client.post("/anymail/mailgun/inbound_mime/", data=form, **AUTH)
    assert response.status_code == 200
    reply = InboundMessage.objects.get()
    assert reply.letter == sent_letter and reply.subject == "Re: stängt"
    assert reply.esp == "Mailgun"


def test_an_event_for_an_unknown_message_is_kept_but_changes_nothing(client, sent_letter):
    payload = mailgun_event(sent_letter, "delivered")
    payload["event-data"]["message"]["headers"]["message-id"] = "someone-else@mg.example"
    assert post_json(client, "/anymail/mailgun/tracking/", payload).status_code == 200
    event = LetterEvent.objects.get()
    assert event.letter is None
    sent_letter.refresh_from_db()
    assert sent_letter.state == states.SENT
