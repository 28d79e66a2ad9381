"""What came back: bounces of many mail systems (Mailman's corpus of real bounce messages,
flufl.bounce's test data, and today's formats), complaints, auto-replies, replies."""

import json
from pathlib import Path

import pytest

from letters.inbound.classify import (
    AUTO_REPLY,
    BOUNCE,
    COMPLAINT,
    REPLY,
    UnreadableMessage,
    classify,
    is_permanent,
    parse,
)

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "bounces" / "flufl"
EXPECTED = json.loads((CORPUS / "expected.json").read_text())
WITH_ADDRESSES = sorted(name for name, e in EXPECTED.items() if e["addresses"])


def classified(raw: bytes | str):
    return classify(parse(raw.encode() if isinstance(raw, str) else raw))


def test_the_corpus_is_the_real_thing():
    assert len(list(CORPUS.glob("*.txt"))) == 117
    assert len(WITH_ADDRESSES) >= 100
    assert "Apache License" in (CORPUS / "LICENSE").read_text()


@pytest.mark.parametrize("name", WITH_ADDRESSES)
def test_every_real_bounce_of_the_corpus_names_its_recipients(name):
    expected = EXPECTED[name]
    found = classified((CORPUS / name).read_bytes())
    assert found.kind == BOUNCE, found.reason
    addresses = {r.address.lower(): r for r in found.recipients}
    for address in expected["addresses"]:
        recipient = addresses[address.lower()]
        assert recipient.status[:1] in "45" and recipient.status.count(".") == 2
        if expected["warning"]:
            # "still trying": a delay is never a reason to give up on the address.
            assert recipient.status.startswith("4.") and not recipient.permanent


# Read by hand in the corpus: what each report says about the address.
PERMANENCE = {
    "postfix_01.txt": ("5.1.1", True),   # Postfix: User unknown
    "dsn_11.txt": ("5.1.1", True),       # RFC 3464 DSN, unknown user
    "exim_01.txt": ("5.1.1", True),      # Exim
    "yahoo_11.txt": ("5.1.1", True),     # "This user doesn't have a yahoo.com account"
    "smtp32_04.txt": ("5.3.0", True),    # sendmail's "553 5.3.0 ... Addressee unknown"
    "qmail_02.txt": ("5.2.2", False),    # qmail: "the user's mailfolder is full"
    "hotpop_01.txt": ("5.2.2", False),   # "the recipient is over disk quota"
    "simple_07.txt": ("5.2.2", False),   # "User's mailbox is full"
    "dsn_01.txt": ("5.0.0", False),      # 5.0.0 "recipient reached disk quota"
    "dsn_09.txt": ("5.0.0", False),      # X.400 gateway: 5.7.1 unable to relay (policy)
}


@pytest.mark.parametrize(("name", "expected"), sorted(PERMANENCE.items()))
def test_gone_addresses_are_permanent_full_or_refused_ones_are_not(name, expected):
    found = classified((CORPUS / name).read_bytes())
    address = EXPECTED[name]["addresses"][0].lower()
    recipient = next(r for r in found.recipients if r.address.lower() == address)
    assert (recipient.status, recipient.permanent) == expected


@pytest.mark.parametrize(("status", "diagnostic", "permanent"), [
    ("5.1.1", "", True), ("5.1.10", "RecipientNotFound", True), ("5.1.2", "", True),
    ("5.4.4", "", True), ("5.2.1", "mailbox disabled", True),
    ("5.2.2", "mailbox full", False), ("5.7.1", "rejected by policy", False),
    ("5.7.1", "user unknown", False),  # a policy code: the address may well exist
    ("4.2.2", "user unknown", False), ("4.4.7", "delivery time expired", False),
    ("5.0.0", "550 No such user here", True), ("5.0.0", "quota exceeded", False),
    ("5.0.0", "", False), ("", "", False), ("5.3.0", "Addressee unknown", True),
])
def test_the_permanence_rule(status, diagnostic, permanent):
    assert is_permanent(status, diagnostic) is permanent


GMAIL = """\
Return-Path: <>
Received: by mail-sor-f69.google.com with SMTP id a640c23a62f3a-a7a8b0
From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: bounces+0123456789abcdef0123456789abcdef@bounce.ftc.example
Auto-Submitted: auto-replied
Subject: Delivery Status Notification (Failure)
Message-ID: <66a1b2c3.050a0220.1.2@mx.google.com>
Date: Wed, 24 Jul 2024 09:12:03 -0700 (PDT)
X-Failed-Recipients: abuse@gone-isp.example
MIME-Version: 1.0
Content-Type: multipart/report; boundary="000000000000a1b2c3"; report-type=delivery-status

--000000000000a1b2c3
Content-Type: text/plain; charset="UTF-8"

** Address not found **

Your message wasn't delivered to abuse@gone-isp.example because the address couldn't be found,
or is unable to receive mail.

The response from the remote server was:
550 5.1.1 The email account that you tried to reach does not exist.

--000000000000a1b2c3
Content-Type: message/delivery-status

Reporting-MTA: dns; googlemail.com
Received-From-MTA: dns; secureyourserver@ftc.example
Arrival-Date: Wed, 24 Jul 2024 09:12:02 -0700 (PDT)

Final-Recipient: rfc822; abuse@gone-isp.example
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.gone-isp.example. (203.0.113.25, the server for the domain gone-isp.example.)
Diagnostic-Code: smtp; 550 5.1.1 The email account that you tried to reach does not exist.
Last-Attempt-Date: Wed, 24 Jul 2024 09:12:03 -0700 (PDT)

--000000000000a1b2c3
Content-Type: text/rfc822-headers

Message-ID: <letter-42.abc@secureyourserver.ftc.example>
From: Federal Trade Commission <secureyourserver@ftc.example>
To: abuse@gone-isp.example
Subject: Your server 203.0.113.7 is an open relay

--000000000000a1b2c3--
"""

OFFICE_365 = """\
From: postmaster@outlook.com
To: bounces+fedcba9876543210fedcba9876543210@bounce.ftc.example
Date: Thu, 25 Jul 2024 10:00:00 +0000
Subject: Undeliverable: Your server 198.51.100.4 is an open proxy
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="_000_MW4PR_"
MIME-Version: 1.0
Message-ID: <0d8e7f6a-1b2c-3d4e-5f60-718293a4b5c6@MW4PR04MB7000.namprd04.prod.outlook.com>
Auto-Submitted: auto-replied

--_000_MW4PR_
Content-Type: text/plain; charset="us-ascii"

Your message to noc@tenant.example couldn't be delivered.
noc wasn't found at tenant.example.

Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP
address lookup'

--_000_MW4PR_
Content-Type: message/delivery-status

Reporting-MTA: dns;MW4PR04MB7000.namprd04.prod.outlook.com
Received-From-MTA: dns;mail.ftc.example
Arrival-Date: Thu, 25 Jul 2024 09:59:58 +0000

Original-Recipient: rfc822;noc@tenant.example
Final-Recipient: rfc822;noc@tenant.example
Action: failed
Status: 5.1.10
Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP
 address lookup

--_000_MW4PR_
Content-Type: message/rfc822

Message-ID: <letter-43.def@secureyourserver.ftc.example>
From: Federal Trade Commission <secureyourserver@ftc.example>
To: noc@tenant.example
Subject: Your server 198.51.100.4 is an open proxy

Dear network administrator,

--_000_MW4PR_--
"""

EXIM_FULL = """\
Return-path: <>
Envelope-to: bounces+00112233445566778899aabbccddeeff@bounce.ftc.example
From: Mail Delivery System <Mailer-Daemon@mx1.isp.example>
To: bounces+00112233445566778899aabbccddeeff@bounce.ftc.example
Subject: Mail delivery failed: returning message to sender
Auto-Submitted: auto-replied
X-Failed-Recipients: postmaster@isp.example
Message-Id: <E1sW8Ab-0001Xy-3Q@mx1.isp.example>

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  postmaster@isp.example
    mailbox is full: retry timeout exceeded

------ This is a copy of the message, including all the headers. ------

Message-ID: <letter-44.fff@secureyourserver.ftc.example>
From: secureyourserver@ftc.example
To: postmaster@isp.example
"""

ARF = """\
From: Yahoo! Mail AntiSpam Feedback <feedback@arf.mail.yahoo.com>
To: abuse@ftc.example
Subject: FW: Your server 192.0.2.8 is an open relay
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="----=_Part_1"

------=_Part_1
Content-Type: text/plain

This is an email abuse report for an email message received from IP 198.18.0.1.

------=_Part_1
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: Yahoo!-Mail-Feedback/2.0
Version: 1
Original-Mail-From: <bounces+0123456789abcdef0123456789abcdef@bounce.ftc.example>
Original-Rcpt-To: <hostmaster@complainer.example>
Arrival-Date: Thu, 25 Jul 2024 08:00:00 -0700

------=_Part_1
Content-Type: message/rfc822

Message-ID: <letter-45.aaa@secureyourserver.ftc.example>
From: secureyourserver@ftc.example
To: hostmaster@complainer.example
Subject: Your server 192.0.2.8 is an open relay

Dear network administrator,
------=_Part_1--
"""


def gmail_bounce(token: str, address: str) -> str:
    """GMAIL's permanent bounce, back to the return path of the letter with `token`, about
    `address`."""
    return (GMAIL.replace("0123456789abcdef0123456789abcdef", token)
            .replace("abuse@gone-isp.example", address))


def exim_full(token: str, address: str) -> str:
    """EXIM_FULL's temporary bounce (a full mailbox), likewise."""
    return (EXIM_FULL.replace("00112233445566778899aabbccddeeff", token)
            .replace("postmaster@isp.example", address))


def arf_complaint(token: str, address: str) -> str:
    """ARF's complaint, by `address`, about the letter with `token`."""
    return (ARF.replace("0123456789abcdef0123456789abcdef", token)
            .replace("hostmaster@complainer.example", address))


def test_a_gmail_bounce():
    found = classified(GMAIL)
    assert found.kind == BOUNCE
    assert [r.as_json() for r in found.recipients] == [
        {"address": "abuse@gone-isp.example", "status": "5.1.1", "permanent": True}]
    assert "<letter-42.abc@secureyourserver.ftc.example>" in found.message_ids
    assert "bounces+0123456789abcdef0123456789abcdef@bounce.ftc.example" in found.delivered_to


def test_an_office_365_bounce():
    found = classified(OFFICE_365)
    assert found.kind == BOUNCE
    assert [r.as_json() for r in found.recipients] == [
        {"address": "noc@tenant.example", "status": "5.1.10", "permanent": True}]
    assert "<letter-43.def@secureyourserver.ftc.example>" in found.message_ids


def test_an_exim_bounce_of_a_full_mailbox_is_not_permanent():
    found = classified(EXIM_FULL)
    assert found.kind == BOUNCE
    (recipient,) = found.recipients
    assert (recipient.address, recipient.permanent) == ("postmaster@isp.example", False)
    assert "<letter-44.fff@secureyourserver.ftc.example>" in found.message_ids


def test_an_arf_complaint():
    found = classified(ARF)
    assert (found.kind, found.feedback_type) == (COMPLAINT, "abuse")
    assert [r.address for r in found.recipients] == ["hostmaster@complainer.example"]
    assert "<letter-45.aaa@secureyourserver.ftc.example>" in found.message_ids


def reply(subject="Re: Your server 203.0.113.7 is an open relay", headers="", body="Fixed."):
    return (f"From: Noc Team <noc@isp.example>\nTo: secureyourserver@ftc.example\n"
            f"Subject: {subject}\nIn-Reply-To: <letter-42.abc@secureyourserver.ftc.example>\n"
            f"{headers}\n{body}\n")


@pytest.mark.parametrize(("subject", "headers"), [
    ("Re: open relay", "Auto-Submitted: auto-replied\n"),          # RFC 3834
    ("Automatic reply: open relay", "X-Auto-Response-Suppress: All\n"),  # Exchange OOF
    ("Out of Office: open relay", ""),
    ("Abwesenheitsnotiz: open relay", ""),
    ("Réponse automatique : open relay", ""),
    ("=?UTF-8?B?6Ieq5YuV6L+U5L+hOiBvcGVuIHJlbGF5?=", ""),  # 自動返信: (Japanese)
    ("Re: open relay", "X-Autoreply: yes\n"),
    ("Re: open relay", "Precedence: auto_reply\n"),
])
def test_auto_replies_are_not_replies(subject, headers):
    found = classified(reply(subject, headers))
    assert found.kind == AUTO_REPLY, found.reason


def test_a_person_s_reply():
    found = classified(reply(headers="Auto-Submitted: no\n"))
    assert found.kind == REPLY
    assert found.message_ids == ["<letter-42.abc@secureyourserver.ftc.example>"]
    assert found.sender == "noc@isp.example"


def test_a_person_quoting_a_bounce_is_not_a_bounce():
    body = ("Our colleague got this: 550 5.1.1 <abuse@isp.example>: Recipient address "
            "rejected: User unknown\nPlease use noc@isp.example instead.")
    assert classified(reply(body=body)).kind == REPLY


@pytest.mark.parametrize("raw", [b"", b"   \n\n", b"\x00\x01\x02" * 10])
def test_what_is_not_a_message_is_refused_clearly(raw):
    with pytest.raises(UnreadableMessage):
        classified(raw)


@pytest.mark.parametrize("raw", [
    b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\n\n--x\n"
    b"Content-Type: message/delivery-status\n\nFinal-Recipient: garbage\nAction: failed\n",
    b"From: MAILER-DAEMON@x\nSubject: Undeliverable\nContent-Type: multipart/mixed\n\nno parts",
    b"Subject: =?utf-8?q?broken\nContent-Type: text/plain; charset=no-such\n\n\xff\xfe",
    b"From: a\nContent-Type: message/feedback-report\n\n\xff",
])
def test_hostile_messages_are_classified_without_raising(raw):
    assert classified(raw).kind in (BOUNCE, COMPLAINT, AUTO_REPLY, REPLY)
