"""Every ESP webhook the site serves, fed hostile payloads *with* valid credentials.

Authentication is covered by tests/test_access_matrix.py; this is what comes after it. For
each of anymail's tracking and inbound URLs, a real payload in that ESP's shape (which must
itself reach the parser and be recorded: `test_each_sample_is_recorded`), then hypothesis's
mutations of it (nodes replaced by hostile JSON, removed, repeated), arbitrary JSON and raw
bytes, each signed as that ESP signs. Whatever arrives:

* never a 500: a recorded event (200), a clear 400 when the payload cannot be read, 404 for
  an ESP this install cannot serve, 503 when anymail could not fetch the message from the
  ESP's API (tests never reach the Internet);
* nothing half-recorded: an answer other than 200 leaves every table as it was; a 200 has
  stored exactly the events the ESP's parser produced (a repeated event id once).

Budget: `examples(25)` per URL (28 URLs: 700 calls), and 150 raw replies straight into
record_inbound.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_from_bytes

import pytest
import requests
from anymail import signals as anymail_signals
from anymail.inbound import AnymailInboundMessage
from django.db import transaction
from hypothesis import given, settings
from hypothesis import strategies as st

from campaign.models import AuditEvent
from letters import tracking
from letters.inbound.receive import record_inbound
from letters.mailtext import clean_text
from letters.models import InboundMessage, Letter, LetterEvent
from probes.contacts.models import Suppression
from tests.conftest import examples
from tests.hostile.conftest import (
    AUTH,
    MAILERSEND_INBOUND_SECRET,
    MAILERSEND_SECRET,
    MAILGUN_KEY,
    MANDRILL_KEY,
    MANDRILL_URL,
    UNISENDER_KEY,
)
from tests.hostile.payloads import dumps, json_values, mutated, raw_mime

pytestmark = [pytest.mark.django_db,
              pytest.mark.filterwarnings("ignore:.*(SendGrid|SendinBlue).*")]

TS = 1763719200  # 2025-11-21 10:00 UTC


def reply_mime(letter: Letter) -> str:
    return ("From: NOC <abuse@isp.example>\r\nTo: secureyourserver@ftc.example\r\n"
            f"Subject: Re: {letter.subject}\r\nMessage-ID: <reply-1@isp.example>\r\n"
            f"In-Reply-To: {letter.message_id}\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\nClosed the relay, thanks.\r\n")


# --- each ESP's shape ---------------------------------------------------------------------


def brevo_tracking(ltr: Letter) -> Any:
    return {"event": "hard_bounce", "email": ltr.email, "id": 1, "date": "2025-11-21 10:00:00",
            "ts_epoch": TS * 1000, "message-id": ltr.message_id, "reason": "550 no such user",
            "tag": "letter", "X-Mailin-custom": json.dumps({"letter": ltr.idempotency_key})}


def brevo_inbound(ltr: Letter) -> Any:
    return {"items": [{
        "Uuid": ["in-uuid-1"], "MessageId": "<reply-1@isp.example>", "InReplyTo": ltr.message_id,
        "Subject": "Re: letter", "RawTextBody": "Closed.", "RawHtmlBody": "<p>Closed.</p>",
        "Headers": {"From": "NOC <abuse@isp.example>", "Subject": "Re: letter",
                    "In-Reply-To": ltr.message_id, "Message-ID": "<reply-1@isp.example>"},
    }]}


def mailersend_tracking(ltr: Letter) -> Any:
    return {"type": "activity.hard_bounced", "created_at": "2025-11-21T10:00:00.000000Z",
            "data": {"object": "activity", "id": "act-1", "type": "hard_bounced",
                     "created_at": "2025-11-21T10:00:00.000000Z",
                     "email": {"message": {"id": ltr.esp_message_id},
                               "recipient": {"email": ltr.email}, "tags": ["letter"]},
                     "morph": {"object": "recipient_bounce", "reason": "550 no such user"}}}


def mailersend_inbound(ltr: Letter) -> Any:
    return {"type": "inbound.message", "data": {
        "id": "in-1", "created_at": "2025-11-21T10:00:00.000000Z", "raw": reply_mime(ltr),
        "sender": {"email": "abuse@isp.example"},
        "recipients": {"rcptTo": [{"email": "secureyourserver@ftc.example"}]}}}


def mailgun_tracking(ltr: Letter) -> Any:
    return {"event-data": {
        "id": "mg-event-1", "timestamp": TS, "event": "failed", "severity": "permanent",
        "recipient": ltr.email, "reason": "bounce",
        "delivery-status": {"code": 550, "message": "no such user"},
        "message": {"headers": {"message-id": ltr.esp_message_id}},
        "user-variables": {"letter": ltr.idempotency_key}}}


def mailgun_inbound_mime(ltr: Letter) -> Any:
    return {"body-mime": reply_mime(ltr), "recipient": "secureyourserver@ftc.example",
            "sender": "abuse@isp.example"}


def mailgun_inbound(ltr: Letter) -> Any:
    return {"recipient": "secureyourserver@ftc.example", "sender": "abuse@isp.example",
            "from": "NOC <abuse@isp.example>", "subject": "Re: letter",
            "body-plain": "Closed.", "body-html": "<p>Closed.</p>",
            "message-headers": json.dumps([["From", "NOC <abuse@isp.example>"],
                                           ["Subject", "Re: letter"],
                                           ["In-Reply-To", ltr.message_id]])}


def mailjet_tracking(ltr: Letter) -> Any:
    return [{"event": "bounce", "time": TS, "MessageID": 19421777835146490, "email": ltr.email,
             "Payload": json.dumps({"letter": ltr.idempotency_key}), "hard_bounce": True,
             "error_related_to": "recipient", "error": "user unknown", "customcampaign": ""}]


def mailjet_inbound(ltr: Letter) -> Any:
    return {"Sender": "abuse@isp.example", "Recipient": "secureyourserver@ftc.example",
            "From": "NOC <abuse@isp.example>", "Subject": "Re: letter",
            "Headers": {"From": "NOC <abuse@isp.example>", "Subject": "Re: letter",
                        "In-Reply-To": ltr.message_id, "Message-ID": "<reply-1@isp.example>"},
            "Parts": [{"Headers": {"Content-Type": "text/plain"}, "ContentRef": "Text-part"}],
            "Text-part": "Closed.", "Html-part": "<p>Closed.</p>", "SpamAssassinScore": "0.1"}


def mailtrap_tracking(ltr: Letter) -> Any:
    return {"events": [{"event": "bounce", "timestamp": TS, "message_id": ltr.esp_message_id,
                        "event_id": "mt-1", "email": ltr.email, "response": "550 no such user",
                        "custom_variables": {"letter": ltr.idempotency_key}}]}


def mailtrap_inbound(ltr: Letter) -> Any:  # anymail fetches the message from Mailtrap's API
    return {"events": [{"event": "inbound.message_received", "inbox_id": 42, "message_id": "7",
                        "timestamp": TS * 1000, "event_id": "mti-1"}]}


def postmark_tracking(ltr: Letter) -> Any:
    return {"RecordType": "Bounce", "ID": 4323372036854775807, "Type": "HardBounce",
            "MessageID": ltr.esp_message_id, "Email": ltr.email,
            "BouncedAt": "2025-11-21T10:00:00Z", "Details": "smtp;550 5.1.1 no such user",
            "Metadata": {"letter": ltr.idempotency_key}}


def postmark_inbound(ltr: Letter) -> Any:
    return {"FromFull": {"Email": "abuse@isp.example", "Name": "NOC"}, "From": "abuse@isp.example",
            "ToFull": [{"Email": "secureyourserver@ftc.example", "Name": ""}],
            "Subject": "Re: letter", "MessageID": "73e6d360-66eb-11e1-8e72-a8904824019b",
            "TextBody": "Closed.", "HtmlBody": "<p>Closed.</p>", "Attachments": [],
            "Headers": [{"Name": "In-Reply-To", "Value": ltr.message_id}]}


def resend_tracking(ltr: Letter) -> Any:
    return {"type": "email.bounced", "created_at": "2025-11-21T10:00:00.000Z",
            "data": {"email_id": ltr.esp_message_id, "to": [ltr.email], "subject": ltr.subject,
                     "bounce": {"message": "550 no such user", "type": "Permanent"}}}


def resend_inbound(ltr: Letter) -> Any:  # anymail fetches the message from Resend's API
    return {"type": "email.received", "created_at": "2025-11-21T10:00:00.000Z",
            "data": {"email_id": "in-1"}}


def sendgrid_tracking(ltr: Letter) -> Any:
    return [{"email": ltr.email, "timestamp": TS, "event": "bounce", "sg_event_id": "sg-1",
             "smtp-id": ltr.message_id, "reason": "550 no such user", "type": "bounce",
             "letter": ltr.idempotency_key}]


def sendgrid_inbound(ltr: Letter) -> Any:
    return {"email": reply_mime(ltr), "to": "secureyourserver@ftc.example",
            "from": "NOC <abuse@isp.example>",
            "envelope": json.dumps({"to": ["secureyourserver@ftc.example"],
                                    "from": "abuse@isp.example"}),
            "charsets": json.dumps({"to": "UTF-8", "from": "UTF-8"}), "spam_score": "0.1"}


def sparkpost_tracking(ltr: Letter) -> Any:
    return [{"msys": {"message_event": {
        "type": "bounce", "bounce_class": "10", "timestamp": str(TS), "event_id": "sp-1",
        "transmission_id": ltr.esp_message_id, "raw_rcpt_to": ltr.email,
        "raw_reason": "550 no such user", "rcpt_meta": {"letter": ltr.idempotency_key}}}}]


def sparkpost_inbound(ltr: Letter) -> Any:
    return [{"msys": {"relay_message": {
        "protocol": "smtp", "msg_from": "abuse@isp.example",
        "rcpt_to": "secureyourserver@ftc.example",
        "content": {"email_rfc822": reply_mime(ltr), "email_rfc822_is_base64": False}}}}]


def unisender_tracking(ltr: Letter) -> Any:
    return {"auth": "", "events_by_user": [{"user_id": 1, "project_id": "p", "events": [{
        "event_name": "transactional_email_status", "event_data": {
            "job_id": "j-1", "email": ltr.email, "status": "hard_bounced",
            "event_time": "2025-11-21 10:00:00", "metadata": {"letter": ltr.idempotency_key},
            "delivery_info": {"delivery_status": "err_user_unknown",
                              "destination_response": "550 no such user"}}}]}]}


def mandrill_tracking(ltr: Letter) -> Any:
    return [{"event": "hard_bounce", "ts": TS, "_id": "md-1",
             "msg": {"email": ltr.email, "diag": "550 no such user", "_id": "md-1",
                     "metadata": {"letter": ltr.idempotency_key}, "tags": ["letter"]}}]


def mandrill_inbound(ltr: Letter) -> Any:
    return [{"event": "inbound", "ts": TS,
             "msg": {"raw_msg": reply_mime(ltr), "email": "secureyourserver@ftc.example"}}]


def amazon_ses(ltr: Letter) -> Any:  # boto3 is not installed: this install serves no SES
    return {"Type": "Notification", "MessageId": "m-1", "Message": "{}"}


def postal(ltr: Letter) -> Any:  # cryptography is not installed: Postal's signatures can't be read
    return {"event": "MessageBounced", "timestamp": TS, "uuid": "p-1", "payload": {}}


# --- signing, as each ESP signs -------------------------------------------------------------


def mailgun_signature() -> dict:
    token = hashlib.sha256(str(time.time_ns()).encode()).hexdigest()[:50]
    timestamp = str(int(time.time()))
    signature = hmac.new(MAILGUN_KEY.encode(), f"{timestamp}{token}".encode(),
                         hashlib.sha256).hexdigest()
    return {"timestamp": timestamp, "token": token, "signature": signature}


def hmac_header(secret: str, header: str):
    def sign(body: bytes) -> dict:
        return {header: hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}
    return sign


def as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def form_body(fields: dict) -> bytes:
    """URL-encoded as a sender would: any string, undecodable bytes included."""
    def quote(text: str) -> str:
        return quote_from_bytes(text.encode("utf-8", "surrogatepass"), safe="")
    return "&".join(f"{quote(str(k))}={quote(v)}" for k, v in fields.items()).encode()


@dataclass(frozen=True)
class Endpoint:
    name: str
    url: str
    sample: Any  # Letter -> payload
    form: bool = False  # posted as form fields (multipart) rather than a JSON body
    ok: frozenset = frozenset({200, 400})  # the answers it may give
    headers: dict = field(default_factory=dict)
    body_signer: Any = None  # bytes -> extra headers (signs the exact body)
    sample_status: int = 200  # what the unmutated sample gets

    def request(self, payload: Any) -> tuple[dict, dict]:
        """(client.post keyword arguments, extra META) for a payload in this ESP's shape."""
        meta = {**AUTH, **self.headers}
        if self.form:
            fields = ({k: as_text(v) for k, v in payload.items()} if isinstance(payload, dict)
                      else {"payload": as_text(payload)})
            if self.name == "mailgun":
                fields.update(mailgun_signature())
            return self.raw(form_body(fields), "application/x-www-form-urlencoded", meta)
        if self.name == "mandrill":
            value = as_text(payload)
            signed = MANDRILL_URL + "mandrill_events" + value
            meta["HTTP_X_MANDRILL_SIGNATURE"] = base64.b64encode(
                hmac.new(MANDRILL_KEY.encode(), signed.encode(), hashlib.sha1).digest()).decode()
            return {"data": {"mandrill_events": value}}, meta
        if self.name == "mailgun-json" and isinstance(payload, dict):
            payload = {**payload, "signature": mailgun_signature()}
        if self.name == "unisender" and isinstance(payload, dict):
            body = dumps({**payload, "auth": UNISENDER_KEY})
            body = body.replace(UNISENDER_KEY.encode(), hashlib.md5(body).hexdigest().encode())
        else:
            body = dumps(payload)
        return self.raw(body, "application/json", meta)

    def raw(self, body: bytes, content_type: str, meta: dict | None = None) -> tuple[dict, dict]:
        meta = {**AUTH, **self.headers} if meta is None else meta
        if self.body_signer:
            meta.update(self.body_signer(body))
        return {"data": body, "content_type": content_type}, meta


FETCHING = frozenset({200, 400, 503})
UNSERVED = frozenset({400, 404})
ENDPOINTS = [
    Endpoint("brevo", "/anymail/brevo/tracking/", brevo_tracking),
    Endpoint("brevo", "/anymail/brevo/inbound/", brevo_inbound, ok=FETCHING),
    Endpoint("brevo", "/anymail/sendinblue/tracking/", brevo_tracking),
    Endpoint("brevo", "/anymail/sendinblue/inbound/", brevo_inbound, ok=FETCHING),
    Endpoint("mailersend", "/anymail/mailersend/tracking/", mailersend_tracking,
             body_signer=hmac_header(MAILERSEND_SECRET, "HTTP_SIGNATURE")),
    Endpoint("mailersend", "/anymail/mailersend/inbound/", mailersend_inbound,
             body_signer=hmac_header(MAILERSEND_INBOUND_SECRET, "HTTP_SIGNATURE")),
    Endpoint("mailgun-json", "/anymail/mailgun/tracking/", mailgun_tracking),
    Endpoint("mailgun", "/anymail/mailgun/inbound_mime/", mailgun_inbound_mime, form=True),
    Endpoint("mailgun", "/anymail/mailgun/inbound/", mailgun_inbound, form=True),
    Endpoint("mailjet", "/anymail/mailjet/tracking/", mailjet_tracking),
    Endpoint("mailjet", "/anymail/mailjet/inbound/", mailjet_inbound),
    Endpoint("mailtrap", "/anymail/mailtrap/tracking/", mailtrap_tracking),
    Endpoint("mailtrap", "/anymail/mailtrap/inbound/", mailtrap_inbound, ok=FETCHING,
             sample_status=503),
    Endpoint("postmark", "/anymail/postmark/tracking/", postmark_tracking),
    Endpoint("postmark", "/anymail/postmark/inbound/", postmark_inbound),
    Endpoint("resend", "/anymail/resend/tracking/", resend_tracking,
             headers={"HTTP_SVIX_ID": "msg_1"}),
    Endpoint("resend", "/anymail/resend/inbound/", resend_inbound, ok=FETCHING,
             headers={"HTTP_SVIX_ID": "msg_2"}, sample_status=503),
    Endpoint("sendgrid", "/anymail/sendgrid/tracking/", sendgrid_tracking),
    Endpoint("sendgrid", "/anymail/sendgrid/inbound/", sendgrid_inbound, form=True),
    Endpoint("sparkpost", "/anymail/sparkpost/tracking/", sparkpost_tracking),
    Endpoint("sparkpost", "/anymail/sparkpost/inbound/", sparkpost_inbound),
    Endpoint("unisender", "/anymail/unisender_go/tracking/", unisender_tracking),
    Endpoint("mandrill", "/anymail/mandrill/", mandrill_tracking),
    Endpoint("mandrill", "/anymail/mandrill/tracking/", mandrill_inbound),
    Endpoint("amazon_ses", "/anymail/amazon_ses/tracking/", amazon_ses, ok=UNSERVED,
             sample_status=404),
    Endpoint("amazon_ses", "/anymail/amazon_ses/inbound/", amazon_ses, ok=UNSERVED,
             sample_status=404),
    Endpoint("postal", "/anymail/postal/tracking/", postal, ok=UNSERVED, sample_status=404,
             headers={"HTTP_X_POSTAL_SIGNATURE": "c2lnbmF0dXJl"}),
    Endpoint("postal", "/anymail/postal/inbound/", postal, ok=UNSERVED, sample_status=404,
             headers={"HTTP_X_POSTAL_SIGNATURE": "c2lnbmF0dXJl"}),
]


@pytest.mark.fuzz
def test_the_fuzzed_urls_are_every_webhook_url_the_site_serves():
    from django.urls import reverse

    from letters import urls as webhook_urls

    served = {reverse(f"anymail:{p.name}") for p in webhook_urls.urlpatterns}
    fuzzed = {e.url for e in ENDPOINTS} - {"/anymail/mailgun/inbound_mime/"}
    assert fuzzed == served


# --- the harness ------------------------------------------------------------------------------


class Emitted:
    """The events anymail's parsers handed to the signals during one call."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any, str]] = []

    def __call__(self, signal):
        def receive(sender, event, esp_name, **kwargs):
            self.events.append((signal, event, esp_name))
        return receive


@pytest.fixture
def emitted():
    seen = Emitted()
    receivers = [(anymail_signals.tracking, seen("tracking")),
                 (anymail_signals.inbound, seen("inbound"))]
    for signal, receiver in receivers:
        signal.connect(receiver, weak=False, dispatch_uid=f"hostile-{id(receiver)}")
    yield seen
    for signal, receiver in receivers:
        signal.disconnect(receiver, dispatch_uid=f"hostile-{id(receiver)}")


@pytest.fixture
def offline(monkeypatch):
    """anymail fetches some inbound messages over HTTP: no test reaches the Internet."""
    asked: list[str] = []

    def refuse(self, method, url, *args, **kwargs):
        asked.append(url)
        raise requests.ConnectionError(f"tests are offline ({url})")

    monkeypatch.setattr(requests.sessions.Session, "request", refuse)
    return asked


def snapshot() -> tuple:
    return (LetterEvent.objects.count(), InboundMessage.objects.count(),
            AuditEvent.objects.count(), Suppression.objects.count(),
            tuple(Letter.objects.order_by("id").values_list("state", flat=True)))


class Ledger:
    """Event ids already stored (a repeated one is recorded once, by design)."""

    def __init__(self) -> None:
        self.ids = set(LetterEvent.objects.exclude(event_id="").values_list("esp", "event_id"))

    def expected_tracking_rows(self, events) -> int:
        rows = 0
        for _signal, event, esp in events:
            key = clean_text(event.event_id or "", 255)  # as record_tracking_event keeps it
            if not key:
                rows += 1
            elif (esp, key) not in self.ids:
                self.ids.add((esp, key))
                rows += 1
        return rows


@pytest.fixture
def ledger(sent_letter) -> Ledger:
    return Ledger()


def post_and_check(client, endpoint: Endpoint, kwargs: dict, meta: dict, emitted: Emitted,
                   ledger: Ledger) -> int:
    before = snapshot()
    emitted.events.clear()
    response = client.post(endpoint.url, **kwargs, **meta)
    status = response.status_code
    assert status in endpoint.ok, (endpoint.url, status, response.content[:300])
    after = snapshot()
    if status != 200:
        assert after == before, "a refused call changed something"
        return status
    tracked = [e for e in emitted.events if e[0] == "tracking"]
    replies = [e for e in emitted.events if e[0] == "inbound" and e[1].message is not None]
    assert after[0] - before[0] == ledger.expected_tracking_rows(tracked)
    assert after[1] - before[1] == len(replies)
    return status


def payloads(endpoint: Endpoint, letter: Letter):
    sample = endpoint.sample(letter)
    content_types = st.sampled_from(["application/json", "application/x-www-form-urlencoded",
                                     "multipart/form-data; boundary=xyz", "text/plain", ""])
    return st.one_of(
        mutated(sample).map(lambda p: ("shaped", p)),
        mutated(sample).map(lambda p: ("shaped", p)),
        json_values.map(lambda p: ("shaped", p)),
        st.tuples(st.binary(max_size=300), content_types).map(lambda p: ("raw", p)),
    )


# --- the tests ------------------------------------------------------------------------------


@pytest.mark.fuzz
def test_each_sample_is_recorded(client, sent_letter, emitted, offline, ledger):
    """The unmutated payloads reach the parsers: the fuzzing starts past authentication."""
    for endpoint in ENDPOINTS:
        offline.clear()
        kwargs, meta = endpoint.request(endpoint.sample(sent_letter))
        status = post_and_check(client, endpoint, kwargs, meta, emitted, ledger)
        assert status == endpoint.sample_status, endpoint.url
        if status == 200:
            assert emitted.events and not offline, endpoint.url
        if status == 503:  # it asked the ESP's API for the message, which tests never reach
            assert offline, endpoint.url


@pytest.mark.fuzz
def test_no_payload_gets_a_500_or_is_half_recorded(client, sent_letter, emitted, offline,
                                                   ledger):
    """examples(25) payloads per URL: one set-up, one hypothesis run per URL."""
    def fuzzer(endpoint: Endpoint):
        @settings(max_examples=examples(25))
        @given(data=st.data())
        def fuzz(data):
            kind, payload = data.draw(payloads(endpoint, sent_letter))
            kwargs, meta = (endpoint.request(payload) if kind == "shaped"
                            else endpoint.raw(payload[0], payload[1]))
            post_and_check(client, endpoint, kwargs, meta, emitted, ledger)

        return fuzz

    for endpoint in ENDPOINTS:
        fuzzer(endpoint)()


def test_a_failure_while_recording_leaves_none_of_the_calls_events(client, sent_letter,
                                                                   monkeypatch):
    """Three events in one SendGrid call, the third fails: the first two are not kept."""
    events = [{**sendgrid_tracking(sent_letter)[0], "event": "delivered", "sg_event_id": f"d{i}"}
              for i in range(3)]
    real = tracking.record_tracking_event
    calls = []

    def flaky(event, esp_name):
        calls.append(event.event_id)
        if len(calls) == 3:
            raise RuntimeError("database went away")
        return real(event, esp_name)

    monkeypatch.setattr(tracking, "record_tracking_event", flaky)
    client.raise_request_exception = False
    before = snapshot()
    response = client.post("/anymail/sendgrid/tracking/", data=dumps(events),
                           content_type="application/json", **AUTH)
    assert response.status_code == 500  # the ESP sends the whole call again
    assert calls == ["d0", "d1", "d2"]
    assert snapshot() == before
    monkeypatch.setattr(tracking, "record_tracking_event", real)
    response = client.post("/anymail/sendgrid/tracking/", data=dumps(events),
                           content_type="application/json", **AUTH)
    assert response.status_code == 200
    assert LetterEvent.objects.filter(esp="SendGrid").count() == 3


@pytest.mark.fuzz
@settings(max_examples=examples(150))
@given(data=st.data())
def test_any_raw_reply_is_stored_as_clean_text_and_never_raises(sent_letter, data):
    raw = data.draw(raw_mime(sent_letter.message_id))
    message = AnymailInboundMessage.parse_raw_mime_bytes(raw)
    with transaction.atomic():
        stored = record_inbound(message, "Fuzz")
    stored.refresh_from_db()
    for value in (stored.from_email, stored.subject, stored.to, stored.text, stored.html,
                  stored.message_id, stored.in_reply_to):
        assert "\x00" not in value
        value.encode("utf-8")  # no lone surrogate
    for value in (stored.from_email, stored.subject, stored.to, stored.message_id):
        assert "\n" not in value and "\r" not in value
    assert len(stored.from_email) <= 254 and len(stored.subject) <= 998
    if stored.letter_id is not None:  # threaded only by its references or its sender
        assert (sent_letter.message_id in stored.in_reply_to
                or stored.from_email == sent_letter.email)


# --- the tracking service's own guards ------------------------------------------------------


@pytest.mark.parametrize("recipient", ["gmail.example", "", "a@b.example, c@d.example",
                                       "\x00", "<script>@x"])
def test_a_bounce_never_suppresses_a_domain_or_garbage(sent_letter, recipient):
    """A bounce's recipient that is not one plain address (here: a bare domain, which the
    do-not-contact list would take as *every* address there) suppresses the letter's own."""
    from datetime import datetime

    from anymail.signals import AnymailTrackingEvent, EventType

    event = AnymailTrackingEvent(
        event_type=EventType.BOUNCED, message_id=["not", "a", "string"],
        metadata=["not a dict"], event_id="b\x00-1", recipient=recipient,
        timestamp=datetime(2026, 11, 21, 10, 0),  # naive, as some ESPs' parsers leave it
        description="550\x00 no such user")
    stored = tracking.record_tracking_event(event, "Fuzz")
    assert stored.event_id == "b-1" and stored.description == "550 no such user"
    assert stored.at.tzinfo is not None and stored.letter is None  # no usable id: not found
    event.metadata = {"letter": sent_letter.idempotency_key}
    event.event_id = "b-2"
    assert tracking.record_tracking_event(event, "Fuzz").letter == sent_letter
    assert list(Suppression.objects.values_list("value", flat=True)) == [sent_letter.email]
