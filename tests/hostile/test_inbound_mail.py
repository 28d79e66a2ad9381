"""Replies as strangers' mail servers send them, through the inbound webhooks: broken
encodings, hostile headers, huge parts. Each is stored (threaded to its letter where its
references say so) as clean text, or refused with a 400 when it is over the size limit.
tests/hostile/test_webhook_fuzz.py throws arbitrary MIME at record_inbound; these are the
cases worth naming.
"""

from __future__ import annotations

import json

import pytest

from letters import states
from letters.models import InboundMessage
from tests.hostile.conftest import AUTH
from tests.hostile.test_webhook_fuzz import form_body, mailgun_signature

pytestmark = pytest.mark.django_db


def post_mime(client, raw: bytes | str):
    """As Mailgun posts it: the message's bytes, whatever they are, URL-encoded in a form."""
    text = raw.decode("utf-8", "surrogateescape") if isinstance(raw, bytes) else raw
    form = {"body-mime": text, "recipient": "secureyourserver@ftc.example",
            "sender": "abuse@isp.example", **mailgun_signature()}
    return client.post("/anymail/mailgun/inbound_mime/", data=form_body(form),
                       content_type="application/x-www-form-urlencoded", **AUTH)


def test_a_reply_with_every_encoding_wrong_is_stored_clean_and_threaded(client, sent_letter):
    raw = (
        b"From: =?x-unknown?q?N=F6C?= <abuse@isp.example>, second@isp.example\r\n"
        b"To: secureyourserver@ftc.example\r\n"
        b"Subject: =?utf-8?b?!!!not-base64?= Re:\r\n  folded\x00 \xe9t\xe9\r\n"
        b"Message-ID: <reply\x00@isp.example>\r\n"
        b"In-Reply-To: " + sent_letter.message_id.encode() + b"\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n"
        b"--b1\r\nContent-Type: text/plain; charset=\"utf-8\x00\"\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!\r\n"
        b"--b1\r\nContent-Type: text/html; charset=x-unknown\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n<p>ferm=E9=ZZ\x00</p>\r\n--b1--\r\n"
    )
    assert post_mime(client, raw).status_code == 200
    reply = InboundMessage.objects.get()
    assert reply.letter == sent_letter  # threaded by its In-Reply-To
    assert reply.from_email == "abuse@isp.example"  # the first plain address
    assert reply.subject.startswith("=?utf-8?b?!!!not-base64?= Re: folded")  # one line
    assert "\x00" not in reply.subject + reply.text + reply.html + reply.message_id
    assert "ferm" in reply.html
    sent_letter.refresh_from_db()
    assert sent_letter.state == states.REPLIED


def test_a_huge_part_is_stored_whole(client, sent_letter):
    body = ("Closed-the-relay." * 240_000)[:4_000_000]  # 4 MB: under the 5 MiB upload limit
    raw = ("From: abuse@isp.example\r\nSubject: Re: letter\r\n"
           f"In-Reply-To: {sent_letter.message_id}\r\n"
           "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body)
    assert post_mime(client, raw).status_code == 200
    assert len(InboundMessage.objects.get().text) >= 3_999_000  # less the CRLF → LF


def test_a_reply_over_the_upload_limit_is_refused_and_nothing_is_kept(client, sent_letter):
    raw = ("From: abuse@isp.example\r\nSubject: Re: letter\r\n\r\n" + "x" * 6 * 1024 * 1024)
    response = client.post("/anymail/postmark/inbound/", content_type="application/json",
                           data=json.dumps({"From": "abuse@isp.example", "TextBody": raw}),
                           **AUTH)
    assert response.status_code == 400
    assert not InboundMessage.objects.exists()
    sent_letter.refresh_from_db()
    assert sent_letter.state == states.SENT


def test_a_json_reply_with_nuls_and_broken_text_is_stored_clean(client, sent_letter):
    payload = {"FromFull": {"Email": "abuse@isp.example", "Name": "<script>x</script>"},
               "From": "abuse@isp.example", "Subject": "Re:\x00 letter\t(closed)",
               "TextBody": "Closed\x00 it.", "HtmlBody": "<p>ferm\u00e9\x00</p>",
               "Headers": [{"Name": "In-Reply-To", "Value": sent_letter.message_id}]}
    response = client.post("/anymail/postmark/inbound/", data=json.dumps(payload),
                           content_type="application/json", **AUTH)
    assert response.status_code == 200
    reply = InboundMessage.objects.get()
    assert reply.letter == sent_letter and reply.from_email == "abuse@isp.example"
    assert reply.text == "Closed it." and reply.html == "<p>ferm\u00e9</p>"
    assert reply.subject == "Re: letter (closed)"


@pytest.mark.parametrize("fields", [
    {"FromFull": {"Email": "not an address\x00", "Name": "x"}},
    {"Subject": "Re: letter\r\nBcc: victim@evil.example"},
    {"Subject": "Re: letter\u2028Bcc: victim@evil.example"},
])
def test_a_json_reply_anymail_cannot_make_a_message_of_is_a_clear_400(client, sent_letter,
                                                                       fields):
    """Refused (the ESP stops retrying), nothing kept, the letter as it was."""
    payload = {"FromFull": {"Email": "abuse@isp.example", "Name": "NOC"},
               "TextBody": "Closed it.",
               "Headers": [{"Name": "In-Reply-To", "Value": sent_letter.message_id}], **fields}
    response = client.post("/anymail/postmark/inbound/", data=json.dumps(payload),
                           content_type="application/json", **AUTH)
    assert response.status_code == 400
    assert not InboundMessage.objects.exists()
    sent_letter.refresh_from_db()
    assert sent_letter.state == states.SENT
